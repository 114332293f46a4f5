# `assertions`, `warnings` and `system.build.toplevel` as NixOS has them: the
# toplevel is what `nixos-rebuild` builds, so evaluating it is the check that
# the host would build. It must fail wherever building the system would.
#
# Here it is a store path string that nothing builds. Evaluating it throws
# the failed assertions' messages (as NixOS does), and otherwise forces the
# value of every option that has one, so a type error anywhere fails it
# just as the system's build inputs would; then it prints the warnings.
{ config, options, lib, ... }:

let
  inherit (lib) mkOption types;

  failed = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);

  # Every option with a value, except the toplevel itself and the module
  # system's own `_module` (its arguments hold `lib` and `pkgs`).
  checked = lib.filter
    (o: o.loc != [ "system" "build" "toplevel" ] && o.isDefined)
    (lib.collect lib.isOption (removeAttrs options [ "_module" ]));

  storePath =
    let name = config.networking.hostName; in
    "/nix/store/${builtins.substring 0 32 (builtins.hashString "sha256" "${name}-${config.system.stateVersion}")}-nixos-system-${name}";
in
{
  options = {
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
      description = "Conditions that must hold; building the system fails with the messages of those that do not.";
    };
    warnings = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Messages printed when the system is built.";
    };
    system.build.toplevel = mkOption {
      type = types.str;
      readOnly = true;
      description = "The system (here: its would-be store path; evaluating it stands for building it).";
    };
  };

  config.system.build.toplevel =
    if failed != [ ] then
      throw "\nFailed assertions:\n${lib.concatMapStrings (m: "- ${m}\n") failed}"
    else
      lib.showWarnings config.warnings
        (builtins.deepSeq (map (o: o.value) checked) storePath);
}
