# `lib.nixosSystem` of the nixpkgs stand-in: nixpkgs' real `lib.evalModules`
# over the host's modules and a few base modules declaring the NixOS options
# cluster flakes set. It must never accept what NixOS would refuse.
#
# The calling convention is nixpkgs' (`system`, `modules`, `specialArgs`),
# and so is the result: `config`, `options`, `pkgs`, `extendModules`, ….
# What differs, because nothing here can build: `pkgs` holds inert
# stand-ins (pkgs.nix), and `config.system.build.toplevel` is a string that
# evaluates only when NixOS would build the system (toplevel.nix).
{ lib }:

{ system ? "x86_64-linux"
, modules
, specialArgs ? { }
, ...
}:
let
  eval = lib.evalModules {
    class = "nixos";
    specialArgs = { modulesPath = toString ./.; } // specialArgs;
    modules = [
      ./options.nix
      ./toplevel.nix
      {
        _file = "${toString ./default.nix}#pkgs";
        _module.args.pkgs = import ./pkgs.nix { inherit lib system; };
      }
    ] ++ modules;
  };
in
eval // { inherit (eval._module.args) pkgs; }
