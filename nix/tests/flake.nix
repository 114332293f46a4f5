# Tests of nix/lite.nix (this directory has its own byte-identical copy, since
# a `path:` flake only sees its own directory). Run ./run.sh.
#
#   cases      name -> { expr; expected; }   compared by run.sh via `failures`
#   failures   names of cases whose expr differs from expected (must be [ ])
#   mustFail   name -> a value whose evaluation must fail (run.sh checks the
#              error message)
{
  outputs = { self }:
    let
      lib = import ./lite.nix;
      inherit (lib) mkIf mkMerge mkForce mkDefault mkOverride mkBefore mkAfter;

      eval = modules: (lib.nixosSystem { modules = [ ./modules/options.nix ] ++ modules; }).config;
      t = modules: (eval modules).test;

      cases = {
        # --- defaults and priorities -------------------------------------
        defaults = {
          expr = with t [ ]; [ enable role name port maybe either list text sub nested.deep.value ];
          expected = [ false "standby" "unnamed" 5432 null 1 [ "default" ] "" { host = "localhost"; port = 80; } 7 ];
        };
        plainBeatsDefault = { expr = (t [{ test.role = "primary"; }]).role; expected = "primary"; };
        mkDefaultLosesToPlain = {
          expr = (t [{ test.name = mkDefault "weak"; } { test.name = "plain"; }]).name;
          expected = "plain";
        };
        mkDefaultBeatsOptionDefault = { expr = (t [{ test.name = mkDefault "weak"; }]).name; expected = "weak"; };
        mkForceBeatsPlain = {
          expr = (t [{ test.role = mkForce "standby"; } { test.role = "primary"; }]).role;
          expected = "standby";
        };
        mkOverrideLowestWins = {
          expr = (t [{ test.name = mkOverride 10 "ten"; } { test.name = mkForce "fifty"; }]).name;
          expected = "ten";
        };
        mkForceOnAttrset = {
          expr = (t [{ test = mkForce { name = "forced"; }; } { test.name = "plain"; }]).name;
          expected = "forced";
        };
        setAttrByPathForce = {
          expr = (t [
            { test.role = "primary"; }
            ({ lib, ... }: lib.setAttrByPath [ "test" "role" ] (lib.mkForce "standby"))
          ]).role;
          expected = "standby";
        };

        # --- mkIf / mkMerge ----------------------------------------------
        mkIfFalseRemoves = { expr = (t [{ test.name = mkIf false "gone"; }]).name; expected = "unnamed"; };
        mkIfTrueKeeps = { expr = (t [{ test.name = mkIf true "kept"; }]).name; expected = "kept"; };
        mkIfOnConfig = {
          expr = (t [
            ({ config, ... }: { config = mkIf config.test.enable { test.name = "enabled"; }; })
            { test.enable = true; }
          ]).name;
          expected = "enabled";
        };
        mkMergeSplices = {
          expr = with t [{ test = mkMerge [ { name = "merged"; } (mkIf true { role = "primary"; }) (mkIf false { port = 1; }) ]; }]; [ name role port ];
          expected = [ "merged" "primary" 5432 ];
        };
        mkIfFalseAttrsOfEntryDisappears = {
          expr = builtins.attrNames (t [{ test.named.a = { }; test.named.b = mkIf false { }; }]).named;
          expected = [ "a" ];
        };

        # --- lists, lines ---------------------------------------------------
        listsConcatenate = {
          expr = (t [{ test.list = [ "a" ]; } { test.list = [ "b" ]; }]).list;
          expected = [ "a" "b" ];
        };
        listsOrder = {
          expr = (t [{ test.list = mkAfter [ "last" ]; } { test.list = [ "mid" ]; } { test.list = mkBefore [ "first" ]; }]).list;
          expected = [ "first" "mid" "last" ];
        };
        listForceReplaces = {
          expr = (t [{ test.list = [ "a" ]; } { test.list = mkForce [ "only" ]; }]).list;
          expected = [ "only" ];
        };
        linesJoin = {
          expr = (t [{ test.text = "one"; } { test.text = "two"; }]).text;
          expected = "one\ntwo";
        };
        equalScalarsAgree = { expr = (t [{ test.name = "x"; } { test.name = "x"; }]).name; expected = "x"; };

        # --- types -----------------------------------------------------------
        eitherStr = { expr = (t [{ test.either = "s"; }]).either; expected = "s"; };
        nullOrSet = { expr = (t [{ test.maybe = "v"; }]).maybe; expected = "v"; };

        # --- submodules ------------------------------------------------------
        submoduleDefaults = {
          expr = (t [{ test.sub.port = 8080; }]).sub;
          expected = { host = "localhost"; port = 8080; };
        };
        submoduleNameArg = {
          expr = (t [{ test.named."matrix/secrets" = { }; test.named.other.key = "custom"; }]).named;
          expected = {
            "matrix/secrets" = { key = "matrix/secrets"; path = "/run/secrets/matrix/secrets"; };
            other = { key = "custom"; path = "/run/secrets/other"; };
          };
        };
        submoduleMergesDefinitions = {
          expr = (t [{ test.sub.host = "h"; } { test.sub.port = 1; }]).sub;
          expected = { host = "h"; port = 1; };
        };

        # --- freeform (undeclared) paths ---------------------------------------
        freeformDeepMerge = {
          expr = (eval [
            { services.thing = { a = 1; nested.x = "x"; }; }
            { services.thing.nested.y = "y"; services.thing.list = [ 1 ]; }
            { services.thing.list = [ 2 ]; }
          ]).services.thing;
          expected = { a = 1; nested = { x = "x"; y = "y"; }; list = [ 1 2 ]; };
        };
        freeformPriorities = {
          expr = (eval [{ a.b = mkDefault 1; } { a.b = 2; } { a.c = mkForce 3; } { a.c = 4; }]).a;
          expected = { b = 2; c = 3; };
        };
        freeformMkIf = {
          expr = (eval [{ a = mkIf true { b = 1; }; } { a.c = mkIf true 2; }]).a;
          expected = { b = 1; c = 2; };
        };
        freeformNextToDeclared = {
          expr = (eval [{ test.name = "n"; testing.other = true; }]).testing.other;
          expected = true;
        };
        declaredStubOptions = {
          expr = (eval [
            { networking.firewall.extraCommands = "a"; }
            { networking.firewall.extraCommands = "b"; services.postgresql.authentication = "x"; }
          ]).networking.firewall.extraCommands;
          expected = "a\nb";
        };

        # --- laziness ------------------------------------------------------------
        lazyUnrelatedThrow = {
          expr = (t [{ test.role = "primary"; services.nginx = throw "nginx must not be evaluated"; }]).role;
          expected = "primary";
        };
        lazyUnrelatedLeafThrow = {
          expr = (t [{ test.role = "primary"; services.nginx.virtualHosts.x.root = throw "no"; other.thing = throw "no"; }]).role;
          expected = "primary";
        };
        lazyConditionOnOwnNamespace = {
          # Reading config.test inside a condition that defines test.* must not
          # loop (names of `config.test' never depend on conditions).
          expr = (t [
            ({ config, ... }: { config.test = mkIf (config.test.role == "primary") { name = "is-primary"; }; })
            { test.role = "primary"; }
          ]).name;
          expected = "is-primary";
        };

        # --- modules, imports, arguments ---------------------------------------------
        importsPathsOnce = {
          expr = (t [ ./modules/chain.nix ./modules/imported-twice.nix ]).list;
          expected = [ "once" ];
        };
        importsInlineAndLines = {
          expr = builtins.sort (a: b: a < b) (lib.splitString "\n" (t [ ./modules/chain.nix ]).text);
          expected = [ "from chain.nix" "from inline import" ];
        };
        explicitOptionsConfig = {
          expr = (eval [{ options.extra.flag = lib.mkEnableOption "x"; config.extra.flag = true; }]).extra.flag;
          expected = true;
        };
        specialArgs = {
          expr = (lib.nixosSystem {
            modules = [ ./modules/options.nix ({ greeting, ... }: { test.name = greeting; }) ];
            specialArgs.greeting = "hi";
          }).config.test.name;
          expected = "hi";
        };
        moduleArgsOption = {
          expr = (t [{ _module.args.answer = "42"; } ({ answer, ... }: { test.name = answer; })]).name;
          expected = "42";
        };
        pkgsStub = {
          expr = (eval [ ({ pkgs, ... }: { test.name = "${pkgs.coreutils}/bin/true"; }) ]).test.name;
          expected = "${(lib.nixosSystem { modules = [ ]; }).pkgs.coreutils.outPath}/bin/true";
        };
        optionsArgument = {
          expr = let c = eval [ ({ options, ... }: { test.name = if options.test.role.isDefined then "has-role" else "no"; }) ]; in c.test.name;
          expected = "has-role";
        };
        toplevelOk = {
          expr = builtins.isString (eval [{ assertions = [{ assertion = true; message = "fine"; }]; }]).system.build.toplevel;
          expected = true;
        };

        # --- lib helpers ------------------------------------------------------------------
        helpers = {
          expr = with lib; [
            (splitString "/" "a/b//c")
            (splitString "." "a.b")
            (toUpper "abc-Z")
            (escapeShellArg "it's")
            (setAttrByPath [ "a" "b" ] 1)
            (getAttrFromPath [ "a" "b" ] { a.b = 2; })
            (recursiveUpdate { a = { b = 1; c = 2; }; } { a.b = 3; })
            (hasPrefix "ab" "abc")
            (hasSuffix "/32" "1.2.3.4/32")
            (hasInfix "::" "2001:db8::1")
            (concatMapStringsSep "," toString [ 1 2 ])
            (optionals false [ 1 ])
            (optional true 1)
            (optionalString true "s")
            (optionalAttrs false { a = 1; })
            (filterAttrs (n: v: v > 1) { a = 1; b = 2; })
            (mapAttrsToList (n: v: n + v) { a = "1"; })
            (genAttrs [ "x" ] (n: n))
            (last [ 1 2 3 ])
            (unique [ 1 2 1 ])
            (strings.removeSuffix "/32" "10.0.0.1/32")
            (lists.flatten [ 1 [ 2 [ 3 ] ] ])
            (attrsets.mapAttrs' (n: v: nameValuePair "${n}2" v) { a = 1; })
          ];
          expected = [
            [ "a" "b" "" "c" ]
            [ "a" "b" ]
            "ABC-Z"
            "'it'\\''s'"
            { a.b = 1; }
            2
            { a = { b = 3; c = 2; }; }
            true
            true
            true
            "1,2"
            [ ]
            [ 1 ]
            "s"
            { }
            { b = 2; }
            [ "a1" ]
            { x = "x"; }
            3
            [ 1 2 ]
            "10.0.0.1"
            [ 1 2 3 ]
            { a2 = 1; }
          ];
        };
      };
    in
    {
      inherit cases;
      failures = builtins.filter (n: cases.${n}.expr != cases.${n}.expected) (builtins.attrNames cases);
      # For a failing case, show what it evaluated to.
      show = builtins.mapAttrs (n: c: { inherit (c) expr expected; }) cases;

      mustFail = {
        enumRejected = (t [{ test.role = "leader"; }]).role;
        portRange = (t [{ test.port = 70000; }]).port;
        typeInList = (t [{ test.list = [ "ok" 3 ]; }]).list;
        conflict = (t [{ test.name = "a"; } { test.name = "b"; }]).name;
        freeformConflict = (eval [{ x.y = "a"; } { x.y = "b"; }]).x.y;
        undefined = (t [ ]).undefined;
        readOnly = (t [{ test.computed = "set"; }]).computed;
        nonBoolCondition = (t [{ test.name = mkIf "yes" "x"; }]).name;
        unknownOption = (t [{ test.rol = "primary"; }]).rol;
        unknownOptionAtToplevel = (eval [{ test.rol = "primary"; }]).system.build.toplevel;
        failedAssertion = (eval [{ assertions = [{ assertion = false; message = "the assertion message"; }]; }]).system.build.toplevel;
        typeErrorAtToplevel = (eval [{ test.port = -1; }]).system.build.toplevel;
        namespaceAsValue = (t [{ test.nested = 3; }]).nested.deep.value;
      };
    };
}
