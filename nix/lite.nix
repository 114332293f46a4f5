# lite.nix: a small, self-contained, NixOS-like module evaluator.
#
# Why it exists: nixflip's example and test flakes must evaluate with `nix eval`
# on machines that cannot fetch nixpkgs (CI sandboxes, offline laptops). Each of
# those flakes therefore has no inputs and carries a byte-identical copy of this
# file. A real flake takes `nixpkgs` as an input and calls
# `nixpkgs.lib.nixosSystem` instead; the cluster module works with both.
#
# The semantics follow nixpkgs' module system where nixflip depends on them:
#   * definitions are merged per option path, deep through attribute sets;
#   * `mkIf` conditions are pushed down into attribute values, so listing the
#     names of `config` never evaluates a condition (this keeps evaluation lazy:
#     reading one option of a module does not touch nginx);
#   * priorities: the lowest number wins (mkForce 50 < plain 100 < mkDefault 1000
#     < option default 1500); definitions of equal winning priority are merged
#     by the option's type (lists concatenate, scalars must agree);
#   * declared options are type-checked; paths nobody declared are accepted
#     ("freeform") and merged deeply, because these flakes set plenty of nixpkgs
#     options (services.nginx, networking.firewall, ...) that lite.nix does not
#     declare. A namespace in which a (non-base) module declares options directly,
#     such as the cluster module's, is closed: an unknown name there is
#     an error, as in NixOS, so a typo in a cluster option cannot pass silently.
#
# Usage:
#   let lib = import ./lite.nix; in
#   lib.nixosSystem { modules = [ ./host.nix ]; specialArgs = { }; }
let
  inherit (builtins)
    attrNames attrValues concatLists concatStringsSep elem elemAt filter foldl'
    functionArgs genList head isAttrs isBool isFloat isFunction isInt isList
    isString length listToAttrs mapAttrs removeAttrs replaceStrings sort
    stringLength substring tail toJSON typeOf;

  # ---------------------------------------------------------------- trivial --

  id = x: x;
  const = x: _: x;
  flip = f: a: b: f b a;
  isPath = x: typeOf x == "path";
  isStringLike = x: isString x || isPath x || (isAttrs x && (x ? outPath || x ? __toString));
  boolToString = b: if b then "true" else "false";
  versionOlder = a: b: builtins.compareVersions a b < 0;
  versionAtLeast = a: b: !(versionOlder a b);

  # ------------------------------------------------------------------ lists --

  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];
  concatMap = f: xs: concatLists (map f xs);
  imap0 = f: xs: genList (i: f i (elemAt xs i)) (length xs);
  imap1 = f: imap0 (i: f (i + 1));
  last = xs: if xs == [ ] then throw "lib.last: empty list" else elemAt xs (length xs - 1);
  init = xs: if xs == [ ] then throw "lib.init: empty list" else genList (elemAt xs) (length xs - 1);
  take = n: xs: genList (elemAt xs) (if n < length xs then n else length xs);
  drop = n: xs: if n >= length xs then [ ] else genList (i: elemAt xs (i + n)) (length xs - n);
  reverseList = xs: genList (i: elemAt xs (length xs - i - 1)) (length xs);
  flatten = x: if isList x then concatMap flatten x else [ x ];
  unique = foldl' (acc: x: if elem x acc then acc else acc ++ [ x ]) [ ];
  range = first: lastN: if first > lastN then [ ] else genList (i: first + i) (lastN - first + 1);
  toList = x: if isList x then x else [ x ];
  foldl = foldl';
  foldr = op: nul: xs:
    let n = length xs; go = i: if i == n then nul else op (elemAt xs i) (go (i + 1));
    in go 0;
  findFirst = pred: default: xs: let m = filter pred xs; in if m == [ ] then default else head m;
  count = pred: xs: length (filter pred xs);
  partition = builtins.partition;

  # ---------------------------------------------------------------- strings --

  concatStrings = concatStringsSep "";
  concatMapStrings = f: xs: concatStrings (map f xs);
  concatMapStringsSep = sep: f: xs: concatStringsSep sep (map f xs);
  concatLines = concatMapStrings (s: s + "\n");
  optionalString = cond: s: if cond then s else "";
  hasPrefix = pre: s: substring 0 (stringLength pre) s == pre;
  hasSuffix = suf: s:
    let ls = stringLength s; lf = stringLength suf;
    in lf <= ls && substring (ls - lf) lf s == suf;
  removePrefix = pre: s:
    if hasPrefix pre s then substring (stringLength pre) (stringLength s) s else s;
  removeSuffix = suf: s:
    if hasSuffix suf s then substring 0 (stringLength s - stringLength suf) s else s;
  stringToCharacters = s: genList (i: substring i 1 s) (stringLength s);
  # Regex metacharacters of POSIX extended regexes (what builtins.split uses).
  escapeRegex = replaceStrings
    (stringToCharacters "\\[]{}()^$?*+|.")
    (map (c: "\\" + c) (stringToCharacters "\\[]{}()^$?*+|."));
  splitString = sep: s: filter isString (builtins.split (escapeRegex sep) s);
  hasInfix = inf: s: length (builtins.split (escapeRegex inf) s) > 1;
  lowerChars = stringToCharacters "abcdefghijklmnopqrstuvwxyz";
  upperChars = stringToCharacters "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  toUpper = replaceStrings lowerChars upperChars;
  toLower = replaceStrings upperChars lowerChars;
  escapeShellArg = arg: "'${replaceStrings [ "'" ] [ "'\\''" ] (toString arg)}'";
  escapeShellArgs = concatMapStringsSep " " escapeShellArg;
  fileContents = file: removeSuffix "\n" (builtins.readFile file);

  # --------------------------------------------------------------- attrsets --

  nameValuePair = name: value: { inherit name value; };
  mapAttrsToList = f: set: map (n: f n set.${n}) (attrNames set);
  mapAttrs' = f: set: listToAttrs (mapAttrsToList f set);
  filterAttrs = pred: set:
    listToAttrs (concatMap (n: optional (pred n set.${n}) (nameValuePair n set.${n})) (attrNames set));
  genAttrs = names: f: listToAttrs (map (n: nameValuePair n (f n)) names);
  optionalAttrs = cond: set: if cond then set else { };
  setAttrByPath = path: value: foldr (n: acc: { ${n} = acc; }) value path;
  attrByPath = path: default: set:
    if path == [ ] then set
    else if isAttrs set && set ? ${head path} then attrByPath (tail path) default set.${head path}
    else default;
  hasAttrByPath = path: set:
    path == [ ] || (isAttrs set && set ? ${head path} && hasAttrByPath (tail path) set.${head path});
  getAttrFromPath = path: set:
    if hasAttrByPath path set then attrByPath path null set
    else throw "cannot find attribute `${showOption path}'";
  recursiveUpdate = lhs: rhs:
    lhs // mapAttrs
      (n: v: if isAttrs v && isAttrs (lhs.${n} or null) then recursiveUpdate lhs.${n} v else v)
      rhs;
  catAttrs = builtins.catAttrs;
  zipAttrsWith = f: sets:
    genAttrs (attrNames (foldl' (a: s: a // s) { } sets)) (n: f n (catAttrs n sets));
  zipAttrs = zipAttrsWith (_: vs: vs);
  isDerivation = x: isAttrs x && (x.type or null) == "derivation";
  attrsToList = mapAttrsToList nameValuePair;

  # ---------------------------------------------------- option declarations --

  mkOption = attrs: attrs // { _type = "option"; };
  mkEnableOption = name: mkOption {
    type = types.bool;
    default = false;
    example = true;
    description = "Whether to enable ${name}.";
  };
  isOption = x: isAttrs x && (x._type or null) == "option";
  literalExpression = text: { _type = "literalExpression"; inherit text; };
  literalMD = text: { _type = "literalMD"; inherit text; };
  mdDoc = id;

  # ------------------------------------------------- definition properties --

  mkIf = condition: content: { _type = "if"; inherit condition content; };
  mkMerge = contents: { _type = "merge"; inherit contents; };
  mkOverride = priority: content: { _type = "override"; inherit priority content; };
  mkOptionDefault = mkOverride 1500;
  mkDefault = mkOverride 1000;
  mkImageMediaOverride = mkOverride 60;
  mkForce = mkOverride 50;
  mkVMOverride = mkOverride 10;
  defaultPriority = 100;
  mkOrder = priority: content: { _type = "order"; inherit priority content; };
  mkBefore = mkOrder 500;
  mkAfter = mkOrder 1500;
  defaultOrderPriority = 1000;

  isType = t: x: isAttrs x && (x._type or null) == t;
  isProperty = x: isType "if" x || isType "merge" x || isType "override" x || isType "order" x;
  # An attribute set that is merged key by key (not a value such as a package).
  isPlainAttrs = x: isAttrs x && !(x ? _type) && !(isDerivation x);

  # ------------------------------------------------------------- messages --

  showOption = loc:
    if loc == [ ] then "<configuration root>"
    else concatMapStringsSep "."
      (n: if builtins.match "[a-zA-Z_][a-zA-Z0-9_'-]*" n != null then n else toJSON n)
      loc;
  # Render a value for an error message without forcing more than one level.
  showValue = v:
    let t = typeOf v; in
    if t == "string" then toJSON v
    else if t == "null" then "null"
    else if t == "bool" then boolToString v
    else if t == "int" || t == "float" || t == "path" then toString v
    else if t == "lambda" then "<function>"
    else if t == "list" then (if v == [ ] then "[ ]" else "[ ${concatMapStringsSep " " showValue v} ]")
    else if isDerivation v then "<derivation ${v.name or "?"}>"
    else if v ? _type then "<${toString v._type}>"
    else "{ ${concatMapStrings (n: "${n} = …; ") (attrNames v)}}";
  showDefs = defs: concatMapStrings (d: "\n- In `${d.file}': ${showValue d.value}") defs;
  showFiles = defs: concatMapStrings (d: "\n- In `${d.file}'") defs;

  # ----------------------------------------------------------- definitions --
  # A definition is { file; value; }. `value` may be wrapped in properties.

  # Strip mkIf/mkMerge/mkOverride/mkOrder from one definition, evaluating the
  # mkIf conditions, and tag each remaining value with its priority and order.
  flattenDef = loc: def:
    let
      go = prio: order: v:
        if isType "merge" v then concatMap (go prio order) v.contents
        else if isType "if" v then
          (if !isBool v.condition then
            throw "mkIf called with a non-Boolean condition for option `${showOption loc}' in `${def.file}'."
          else if v.condition then go prio order v.content
          else [ ])
        else if isType "override" v then go v.priority order v.content
        else if isType "order" v then go prio v.priority v.content
        else [{ inherit (def) file; value = v; priority = prio; inherit order; }];
    in
    go defaultPriority defaultOrderPriority def.value;

  # Turn a definition of an attribute set into definitions whose values are
  # plain attribute sets, moving properties down into the attribute values.
  # Conditions are NOT evaluated here: that is what keeps attribute names lazy.
  pushDown = loc: def:
    let
      v = def.value;
      wrap = f: map
        (d: d // { value = mapAttrs (_: f) d.value; })
        (pushDown loc (def // { value = v.content; }));
    in
    if isType "merge" v then concatMap (c: pushDown loc (def // { value = c; })) v.contents
    else if isType "if" v then wrap (mkIf v.condition)
    else if isType "override" v then wrap (mkOverride v.priority)
    else if isType "order" v then wrap (mkOrder v.priority)
    else if isPlainAttrs v then [ def ]
    else throw "The option `${showOption loc}' is an attribute set of options, but it is defined as ${showValue v} in `${def.file}'.";

  subDefs = defs: name:
    concatMap (d: optional (d.value ? ${name}) { inherit (d) file; value = d.value.${name}; }) defs;
  # Names of a list of pushed-down definitions (values are not forced).
  defNames = base: defs: attrNames (foldl' (acc: d: acc // d.value) base defs);

  # Merge the definitions of one option path with `type`: discharge
  # properties, keep the winning priority, check and merge the values.
  mergeDefinitions = loc: type: defs:
    let
      flat = concatMap (flattenDef loc) defs;
      best = foldl' (m: d: if d.priority < m then d.priority else m) 9999 flat;
      winners = sort (a: b: a.order < b.order) (filter (d: d.priority == best) flat);
      checked = map (d: if type.check d.value then d else throw (typeError loc type d)) winners;
      isDefined = winners != [ ];
    in
    {
      inherit isDefined;
      definitions = winners;
      value =
        if isDefined then type.merge loc checked
        else throw "The option `${showOption loc}' is used but not defined.";
    };

  typeError = loc: type: def:
    "The option `${showOption loc}' has a value `${showValue def.value}' that is not of type `${type.description}'.\n- defined in `${def.file}'";

  mergeEqualOption = loc: defs:
    let first = head defs; in
    if length defs == 1 || all (d: d.value == first.value) defs then first.value
    else throw "The option `${showOption loc}' has conflicting definition values:${showDefs defs}";

  mergeOneOption = loc: defs:
    if length defs == 1 then (head defs).value
    else throw "The option `${showOption loc}' is defined multiple times while it's expected to be unique:${showFiles defs}";

  inherit (builtins) all any;

  # ---------------------------------------------------- freeform merging --
  # Used for paths no module declares and for `types.anything`.
  #   strict = false: attribute names come from the definitions without
  #     evaluating mkIf conditions (like declared namespaces in NixOS; this is
  #     what lets `config.services` be listed while a condition elsewhere reads
  #     `config.services.nginx.enable`). A leaf whose only definitions are
  #     disabled throws "used but not defined" when read.
  #     (The base module below therefore declares the nixpkgs options that the
  #     cluster module sets only conditionally, so dumping them works.)
  #   strict = true (types.anything, e.g. systemd.services): names whose
  #     definitions are all disabled by mkIf are dropped, like `attrsOf`.

  attrsShaped = v:
    if isType "merge" v then all attrsShaped v.contents
    else if isProperty v then attrsShaped v.content
    else isPlainAttrs v;

  mergeFree = strict: loc: defs:
    if defs != [ ] && all (d: attrsShaped d.value) defs
    then mergeFreeAttrs strict loc (concatMap (pushDown loc) defs)
    else (mergeDefinitions loc (freeLeafType strict) defs).value;

  mergeFreeAttrs = strict: loc: pushed:
    let
      names = defNames { } pushed;
      kept =
        if strict then filter (n: any (d: flattenDef (loc ++ [ n ]) d != [ ]) (subDefs pushed n)) names
        else names;
    in
    genAttrs kept (n: mergeFree strict (loc ++ [ n ]) (subDefs pushed n));

  freeLeafType = strict: mkOptionType {
    name = "anything";
    merge = loc: defs:
      let vs = map (d: d.value) defs; in
      if all isPlainAttrs vs then mergeFreeAttrs strict loc (concatMap (pushDown loc) defs)
      else if length defs == 1 then head vs
      # Lists concatenate, as most list options in nixpkgs (`listOf`) do.
      else if all isList vs then concatLists vs
      else mergeEqualOption loc defs;
  };

  # ------------------------------------------------------------------ types --

  mkOptionType = attrs: {
    _type = "option-type";
    description = attrs.name;
    check = _: true;
    merge = mergeEqualOption;
  } // attrs;

  types = rec {
    anything = mkOptionType {
      name = "anything";
      merge = loc: defs: mergeFree true loc defs;
    };
    unspecified = anything // { name = "unspecified"; description = "unspecified value"; };
    raw = mkOptionType { name = "raw"; description = "raw value"; merge = mergeOneOption; };

    bool = mkOptionType { name = "bool"; description = "boolean"; check = isBool; };
    int = mkOptionType { name = "int"; description = "signed integer"; check = isInt; };
    float = mkOptionType { name = "float"; description = "floating point number"; check = isFloat; };
    number = either int float;
    ints = rec {
      between = lo: hi: mkOptionType {
        name = "intBetween";
        description = "integer between ${toString lo} and ${toString hi} (both inclusive)";
        check = x: isInt x && x >= lo && x <= hi;
      };
      unsigned = mkOptionType {
        name = "unsignedInt";
        description = "unsigned integer, meaning >=0";
        check = x: isInt x && x >= 0;
      };
      positive = mkOptionType {
        name = "positiveInt";
        description = "positive integer, meaning >0";
        check = x: isInt x && x > 0;
      };
      u16 = between 0 65535 // { name = "u16"; description = "16 bit unsigned integer; between 0 and 65535 (both inclusive)"; };
    };
    port = ints.u16 // { name = "port"; };

    str = mkOptionType { name = "str"; description = "string"; check = isString; };
    nonEmptyStr = mkOptionType {
      name = "nonEmptyStr";
      description = "non-empty string";
      check = x: isString x && builtins.match "[ \t\n]*" x == null;
    };
    strMatching = pattern: mkOptionType {
      name = "strMatching ${toJSON pattern}";
      description = "string matching the pattern ${pattern}";
      check = x: isString x && builtins.match pattern x != null;
    };
    separatedString = sep: mkOptionType {
      name = "separatedString";
      description = "strings concatenated with ${toJSON sep}";
      check = isString;
      merge = loc: defs: concatMapStringsSep sep (d: d.value) defs;
    };
    lines = separatedString "\n" // { name = "lines"; };
    commas = separatedString ",";
    envVar = separatedString ":";

    # Like NixOS: a path value, or a string holding an absolute path (so
    # `config.sops.secrets."x".path`, i.e. "/run/secrets/x", is a path).
    path = mkOptionType {
      name = "path";
      description = "path";
      check = x: isPath x || (isStringLike x && hasPrefix "/" (toString x));
    };
    package = mkOptionType { name = "package"; description = "package"; };
    attrs = mkOptionType {
      name = "attrs";
      description = "attribute set";
      check = isAttrs;
      merge = loc: defs: foldl' (acc: d: acc // d.value) { } defs;
    };

    nullOr = t: mkOptionType {
      name = "nullOr";
      description = "null or ${t.description}";
      check = x: x == null || t.check x;
      merge = loc: defs:
        let nulls = filter (d: d.value == null) defs; in
        if nulls == [ ] then t.merge loc defs
        else if length nulls == length defs then null
        else throw "The option `${showOption loc}' is defined both null and not null:${showDefs defs}";
    };

    listOf = t: mkOptionType {
      name = "listOf";
      description = "list of ${t.description}";
      check = isList;
      # Each element is merged on its own so that its type is checked (and a
      # submodule element gets its defaults).
      merge = loc: defs: concatLists (imap1
        (i: d: concatLists (imap1
          (j: x:
            let r = mergeDefinitions (loc ++ [ "[definition ${toString i}-entry ${toString j}]" ]) t [{ inherit (d) file; value = x; }];
            in optional r.isDefined r.value)
          d.value))
        defs);
    };

    attrsOf = t: mkOptionType {
      name = "attrsOf";
      description = "attribute set of ${t.description}";
      check = isPlainAttrs;
      # Strict in names (entries disabled by mkIf disappear), lazy in values.
      merge = loc: defs:
        let
          pushed = concatMap (pushDown loc) defs;
          entry = n: mergeDefinitions (loc ++ [ n ]) t (subDefs pushed n);
        in
        listToAttrs (concatMap
          (n: let r = entry n; in optional r.isDefined (nameValuePair n r.value))
          (defNames { } pushed));
    };
    lazyAttrsOf = t: attrsOf t // {
      name = "lazyAttrsOf";
      merge = loc: defs:
        let pushed = concatMap (pushDown loc) defs; in
        genAttrs (defNames { } pushed) (n: (mergeDefinitions (loc ++ [ n ]) t (subDefs pushed n)).value);
    };

    enum = values: mkOptionType {
      name = "enum";
      description =
        if values == [ ] then "impossible (empty enum)"
        else "one of ${concatMapStringsSep ", " showValue values}";
      check = x: elem x values;
    };

    either = a: b: mkOptionType {
      name = "either";
      description = "${a.description} or ${b.description}";
      check = x: a.check x || b.check x;
      merge = loc: defs:
        let vs = map (d: d.value) defs; in
        if all a.check vs then a.merge loc defs
        else if all b.check vs then b.merge loc defs
        else mergeEqualOption loc defs;
    };
    oneOf = ts:
      if ts == [ ] then throw "types.oneOf needs at least one type"
      else foldl' either (head ts) (tail ts);

    uniq = t: t // { merge = mergeOneOption; };
    functionTo = t: mkOptionType {
      name = "functionTo";
      description = "function that evaluates to a(n) ${t.description}";
      check = isFunction;
      merge = loc: defs: arg: t.merge loc (map (d: d // { value = d.value arg; }) defs);
    };

    submoduleWith = { modules, specialArgs ? { } }: mkOptionType {
      name = "submodule";
      description = "submodule";
      check = x: isAttrs x || isFunction x || isPath x;
      # Every definition becomes one more module of a nested evaluation; the
      # attribute name (for attrsOf (submodule ...)) is passed as `name`. An
      # attribute-set definition only defines config (as in NixOS), so a
      # sub-option called `key` or `imports` can be set.
      merge = loc: defs: (evalModules {
        modules = modules ++ map
          (d: if isAttrs d.value then { _file = d.file; config = d.value; }
          else { _file = d.file; imports = [ d.value ]; })
          defs;
        specialArgs = { name = last loc; } // specialArgs;
        prefix = loc;
      }).config;
    };
    submodule = modules: submoduleWith { modules = toList modules; };
  };

  # ---------------------------------------------------------------- modules --

  # Call a module function with the arguments it names (as NixOS does), so
  # modules without `...` work and unused arguments are never evaluated.
  applyModule = ctx: f:
    let
      fa = functionArgs f;
      known = name: ctx.specialArgs ? ${name} || ctx.builtinArgs ? ${name};
      lookup = name:
        if ctx.specialArgs ? ${name} then ctx.specialArgs.${name}
        else if ctx.builtinArgs ? ${name} then ctx.builtinArgs.${name}
        else ctx.config._module.args.${name} or (throw
          "lite.nix: module argument `${name}' is not available (it is neither a special argument nor set in `_module.args').");
    in
    if fa == { } then f (ctx.builtinArgs // ctx.specialArgs)
    else f (mapAttrs (name: _: lookup name) (filterAttrs (name: hasDefault: !hasDefault || known name) fa));

  moduleKeys = [ "imports" "options" "config" "_file" "key" "disabledModules" "meta" ];

  # A module is a function or an attribute set; with neither `options` nor
  # `config` it is shorthand and everything except `imports` is config.
  normalizeModule = ctx: file: m:
    let
      m' = if isFunction m then applyModule ctx m else m;
      file' = if m' ? _file then toString m'._file else file;
      extra = filter (n: !(elem n moduleKeys)) (attrNames m');
    in
    if !isAttrs m' then throw "lite.nix: the module in `${file}' is neither an attribute set nor a function returning one."
    else if m' ? options || m' ? config then
      (if extra != [ ] then
        throw "lite.nix: the module in `${file'}' has an unsupported top-level attribute `${head extra}'; with `options' or `config' present, all definitions go under `config'."
      else { file = file'; imports = m'.imports or [ ]; options = m'.options or { }; config = m'.config or { }; })
    else { file = file'; imports = m'.imports or [ ]; options = { }; config = removeAttrs m' moduleKeys; };

  # All modules reachable through `imports`, each once. Path modules are keyed
  # by their path, so a file imported from two places is evaluated once.
  collectModules = ctx: modules:
    let
      load = parentKey: parentFile: i: m:
        if isPath m || (isString m && hasPrefix "/" m) then
          { key = toString m; module = normalizeModule ctx (toString m) (import m); }
        else {
          key = "${parentKey}:${toString i}";
          module = normalizeModule ctx
            (if parentKey == "root" then "<inline module #${toString i}>" else parentFile)
            m;
        };
      items = builtins.genericClosure {
        startSet = imap0 (load "root" "") modules;
        operator = item: imap0 (load item.key item.module.file) item.module.imports;
      };
    in
    map (item: item.module) items;

  # Merge the option declarations of all modules into one tree whose inner
  # nodes are { _type = "lite-namespace"; closed; children; }.
  mergeDecls = loc: decls:
    let opts = filter (d: isOption d.value) decls; in
    if opts != [ ] then
      (if length decls == 1 then (head opts).value // { declarations = [ (head opts).file ]; }
      else throw "The option `${showOption loc}' is declared more than once (lite.nix does not merge declarations):${showFiles decls}")
    else if !(all (d: isAttrs d.value) decls) then
      throw "The option declaration `${showOption loc}' is neither an option (mkOption) nor an attribute set of options:${showFiles decls}"
    else {
      _type = "lite-namespace";
      # Closed when a regular module declares options right here: unknown
      # names in such a namespace are typos, not freeform settings.
      closed = any (d: !d.open && any (n: isOption d.value.${n}) (attrNames d.value)) decls;
      children = genAttrs (defNames { } decls) (n: mergeDecls (loc ++ [ n ])
        (concatMap (d: optional (d.value ? ${n}) (d // { value = d.value.${n}; })) decls));
    };

  unknownMessage = loc: defs:
    "The option `${showOption loc}' does not exist. Definition values:${showFiles defs}";

  # Evaluate definitions against the declaration tree. Result nodes:
  #   { _kind = "option"; value; isDefined; ... }  a declared option
  #   { _kind = "ns"; children; unknown; }           a declared namespace
  #   { _kind = "free"; value; }                     an undeclared subtree
  evalNode = loc: decl: defs:
    if decl == null then { _kind = "free"; value = mergeFree false loc defs; }
    else if isOption decl then evalOption loc decl defs
    else evalNamespace loc decl defs;

  evalNamespace = loc: ns: defs:
    let
      pushed = concatMap (pushDown loc) defs;
      names = defNames ns.children pushed;
      unknown = if ns.closed then filter (n: !(ns.children ? ${n})) (defNames { } pushed) else [ ];
    in
    {
      _kind = "ns";
      inherit loc unknown;
      unknownMessages = map (n: unknownMessage (loc ++ [ n ]) (subDefs pushed n)) unknown;
      children = genAttrs names (n:
        if elem n unknown then { _kind = "unknown"; value = throw (unknownMessage (loc ++ [ n ]) (subDefs pushed n)); }
        else evalNode (loc ++ [ n ]) (ns.children.${n} or null) (subDefs pushed n));
    };

  evalOption = loc: opt: defs:
    let
      type = opt.type or types.anything;
      defaultDef = optional (opt ? default) {
        file = "the default of option `${showOption loc}'";
        value = mkOptionDefault opt.default;
      };
      res = mergeDefinitions loc type (defs ++ defaultDef);
      explicit = concatMap (flattenDef loc) defs;
    in
    {
      _kind = "option";
      inherit loc;
      inherit (res) isDefined;
      files = map (d: d.file) res.definitions;
      value =
        if (opt.readOnly or false) && explicit != [ ] then
          throw "The option `${showOption loc}' is read-only, but it is set:${showFiles explicit}"
        else if opt ? apply then opt.apply res.value
        else res.value;
    };

  nodeValue = node: if node._kind == "ns" then mapAttrs (_: nodeValue) node.children else node.value;

  collectUnknown = node:
    if node._kind == "ns" then node.unknownMessages ++ concatMap collectUnknown (attrValues node.children)
    else [ ];

  # NixOS-style option tree for the `options` argument and result: the
  # declarations, with `value`, `isDefined`, `loc` and `files` added.
  annotate = decl: node:
    if isOption decl then decl // { inherit (node) value isDefined loc files; }
    else mapAttrs (n: d: annotate d node.children.${n}) decl.children;

  baseFile = "<lite.nix: NixOS stand-in declarations>";

  evalModules = { modules, specialArgs ? { }, prefix ? [ ] }:
    let
      ctx = {
        inherit specialArgs config;
        builtinArgs = {
          inherit lib config options;
          # For lite.nix's own base module (system.build.toplevel).
          liteInternal.unknownDefinitions = collectUnknown tree;
        };
      };
      collected = collectModules ctx modules;
      decls = mergeDecls prefix (map
        (m: { inherit (m) file; open = m.file == baseFile; value = m.options; })
        collected);
      tree = evalNamespace prefix decls (map (m: { inherit (m) file; value = m.config; }) collected);
      config = nodeValue tree;
      options = annotate decls tree;
    in
    {
      inherit config options;
      _module.args = ctx.builtinArgs // specialArgs;
      type = "configuration";
    };

  # ------------------------------------------------------------------ NixOS --

  # A tiny stand-in for nixpkgs: fake derivations that interpolate to store
  # paths. Anything not listed here is simply missing (evaluation fails).
  mkPkgs = system:
    let
      drv = name: attrs: {
        type = "derivation";
        inherit name system;
        outPath = "/nix/store/${substring 0 32 (builtins.hashString "sha256" "${system}-${name}")}-${name}";
        meta = { };
      } // attrs;
      postgresql = version: drv "postgresql-${version}" {
        pname = "postgresql";
        inherit version;
        psqlSchema = version;
      };
    in
    {
      inherit system lib;
      stdenv = { hostPlatform.system = system; isLinux = true; };
      writeText = name: text: drv name { inherit text; };
      writeShellScript = name: text: drv name { text = "#!/bin/sh\n" + text; };
      writeShellScriptBin = name: text: drv name { inherit text; meta.mainProgram = name; };
      postgresql = postgresql "16";
      postgresql_14 = postgresql "14";
      postgresql_15 = postgresql "15";
      postgresql_16 = postgresql "16";
      postgresql_17 = postgresql "17";
      matrix-synapse = drv "matrix-synapse-1.118.0" { pname = "matrix-synapse"; };
      nginx = drv "nginx-1.26.2" { pname = "nginx"; };
      bash = drv "bash-5.2p32" { };
      coreutils = drv "coreutils-9.5" { };
      gnugrep = drv "gnugrep-3.11" { };
      gnused = drv "gnused-4.9" { };
      iptables = drv "iptables-1.8.10" { };
      openssl = drv "openssl-3.3.2" { };
      iproute2 = drv "iproute2-6.9.0" { };
      openssh = drv "openssh-9.8p1" { };
      curl = drv "curl-8.9.1" { };
      jq = drv "jq-1.7.1" { };
      sops = drv "sops-3.9.0" { };
      age = drv "age-1.2.0" { };
      util-linux = drv "util-linux-2.39.4" { };
    };

  # Declarations of the few nixpkgs options whose merge behaviour matters to
  # the cluster module (text that several modules append to, lists, attribute
  # sets of units), plus assertions and system.build.toplevel. Everything else
  # stays freeform. These namespaces are open: siblings may be set freely.
  nixosBaseModule = { config, options, pkgs, liteInternal, ... }:
    let
      inherit (types) anything attrsOf bool lines listOf nullOr package path port str;
      opt = type: default: description: mkOption { inherit type default description; };
      cfgPg = config.services.postgresql;

      # Force every declared option that has a value (so a type error
      # anywhere fails the "build"), skipping toplevel itself.
      forceDeclared = o:
        if isOption o then
          (o.loc == [ "system" "build" "toplevel" ] || !o.isDefined || builtins.deepSeq o.value true)
        else all forceDeclared (attrValues o);

      toplevel =
        let
          failed = map (a: a.message) (filter (a: !a.assertion) config.assertions);
          unknown = liteInternal.unknownDefinitions;
          storePath = "/nix/store/${substring 0 32 (builtins.hashString "sha256" config.networking.hostName)}-nixos-system-${config.networking.hostName}-lite";
        in
        if unknown != [ ] then throw (concatStringsSep "\n" unknown)
        else if failed != [ ] then throw "\nFailed assertions:\n${concatMapStrings (m: "- ${m}\n") failed}"
        else builtins.seq (forceDeclared options)
          (foldl' (acc: w: builtins.trace "evaluation warning: ${w}" acc) storePath config.warnings);
    in
    {
      _file = baseFile;
      options = {
        assertions = opt (listOf anything) [ ] "Conditions that must hold; `system.build.toplevel' throws the messages of the failed ones.";
        warnings = opt (listOf str) [ ] "Messages traced when `system.build.toplevel' is evaluated.";
        system.build.toplevel = mkOption {
          type = str;
          readOnly = true;
          default = toplevel;
          description = "Stand-in for the system closure: evaluating it checks assertions and every declared option.";
        };
        system.stateVersion = opt str "24.05" "NixOS release the state on this host was created with.";
        networking.hostName = opt str "nixos" "The host name.";
        networking.firewall = {
          allowedTCPPorts = opt (listOf port) [ ] "TCP ports open to everyone.";
          allowedUDPPorts = opt (listOf port) [ ] "UDP ports open to everyone.";
          extraCommands = opt lines "" "iptables commands run when the firewall starts.";
          extraStopCommands = opt lines "" "iptables commands run when the firewall stops.";
          extraInputRules = opt lines "" "nftables rules of the input chain (the nftables-based firewall).";
        };
        networking.nftables.enable = opt bool false "Use the nftables-based firewall instead of iptables.";
        services.postgresql = {
          package = opt package pkgs.postgresql_16 "The PostgreSQL package.";
          dataDir = opt str "/var/lib/postgresql/${cfgPg.package.psqlSchema}" "The data directory.";
          authentication = opt lines "" "Extra pg_hba.conf lines.";
          ensureDatabases = opt (listOf str) [ ] "Databases created if missing.";
          ensureUsers = opt (listOf anything) [ ] "Roles created if missing.";
          initialScript = opt (nullOr path) null "SQL run once, right after initdb.";
          settings = opt (attrsOf anything) { } "postgresql.conf settings.";
        };
        services.matrix-synapse = {
          extraConfigFiles = opt (listOf path) [ ] "Extra Synapse configuration files (secrets).";
          settings = opt (attrsOf anything) { } "homeserver.yaml settings.";
        };
        security.acme.acceptTerms = opt bool false "Accept the CA's terms of service.";
        services.nginx.virtualHosts = opt (attrsOf anything) { } "nginx virtual hosts.";
        security.acme.certs = opt (attrsOf anything) { } "ACME certificates.";
        systemd.services = opt (attrsOf anything) { } "systemd services.";
        systemd.tmpfiles.rules = opt (listOf str) [ ] "tmpfiles.d rules.";
        users.users = opt (attrsOf anything) { } "User accounts.";
        users.groups = opt (attrsOf anything) { } "Groups.";
        environment.systemPackages = opt (listOf package) [ ] "Packages in the system profile.";
        environment.etc = opt (attrsOf anything) { } "Files in /etc.";
      };
    };

  # lite.nixosSystem mirrors nixpkgs.lib.nixosSystem's calling convention.
  nixosSystem = { system ? "x86_64-linux", modules, specialArgs ? { }, ... }:
    let
      pkgs = mkPkgs system;
      eval = evalModules {
        modules = [ nixosBaseModule ] ++ modules;
        specialArgs = { inherit pkgs; modulesPath = "/lite.nix-has-no-nixpkgs-modules"; } // specialArgs;
      };
    in
    eval // { inherit pkgs; };

  lib = {
    # module system
    inherit evalModules nixosSystem mkOption mkEnableOption mkOptionType isOption
      literalExpression literalMD mdDoc mkIf mkMerge mkOverride mkOptionDefault
      mkDefault mkImageMediaOverride mkForce mkVMOverride mkOrder mkBefore mkAfter
      defaultPriority defaultOrderPriority mergeEqualOption mergeOneOption
      showOption types;
    # trivial
    inherit id const flip isPath isStringLike boolToString versionOlder versionAtLeast isDerivation;
    inherit (builtins) isAttrs isBool isFloat isFunction isInt isList isString
      seq deepSeq trace typeOf toJSON fromJSON readFile pathExists;
    # lists
    inherit optional optionals concatMap imap0 imap1 last init take drop reverseList
      flatten unique range toList foldl foldr findFirst count partition all any;
    inherit (builtins) head tail length elem elemAt filter map genList concatLists sort foldl';
    # strings
    inherit concatStrings concatMapStrings concatMapStringsSep concatLines optionalString
      hasPrefix hasSuffix hasInfix removePrefix removeSuffix stringToCharacters escapeRegex
      splitString toUpper toLower escapeShellArg escapeShellArgs fileContents;
    inherit (builtins) concatStringsSep replaceStrings stringLength substring match split;
    # attrsets
    inherit nameValuePair mapAttrsToList mapAttrs' filterAttrs genAttrs optionalAttrs
      setAttrByPath attrByPath hasAttrByPath getAttrFromPath recursiveUpdate catAttrs
      zipAttrsWith zipAttrs attrsToList;
    inherit (builtins) attrNames attrValues mapAttrs listToAttrs hasAttr getAttr removeAttrs intersectAttrs;

    # nixpkgs groups its functions into sub-sets; here they are all the same set.
    strings = lib;
    lists = lib;
    attrsets = lib;
    trivial = lib;
    modules = lib;
    options = lib;
  };
in
lib
