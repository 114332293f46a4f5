# Declarations shared by the evaluator tests.
{ lib, ... }:
let inherit (lib) mkOption types; in
{
  options.test = {
    enable = lib.mkEnableOption "the test module";
    role = mkOption { type = types.enum [ "primary" "standby" ]; default = "standby"; };
    name = mkOption { type = types.str; default = "unnamed"; };
    port = mkOption { type = types.port; default = 5432; };
    maybe = mkOption { type = types.nullOr types.str; default = null; };
    either = mkOption { type = types.either types.int types.str; default = 1; };
    list = mkOption { type = types.listOf types.str; default = [ "default" ]; };
    text = mkOption { type = types.lines; default = ""; };
    computed = mkOption { type = types.str; readOnly = true; default = "computed"; };
    undefined = mkOption { type = types.str; };
    nested.deep.value = mkOption { type = types.int; default = 7; };
    sub = mkOption {
      type = types.submodule {
        options.host = mkOption { type = types.str; default = "localhost"; };
        options.port = mkOption { type = types.port; default = 80; };
      };
      default = { };
    };
    named = mkOption {
      type = types.attrsOf (types.submodule ({ name, ... }: {
        options.key = mkOption { type = types.str; default = name; };
        options.path = mkOption { type = types.str; default = "/run/secrets/${name}"; };
      }));
      default = { };
    };
  };
}
