# nixpkgs for evaluating cluster flakes where nixpkgs cannot be downloaded
# (tests, CI, the offline demo). It must never pretend to build anything.
#
# A cluster flake takes `nixpkgs` as an input and calls
# `nixpkgs.lib.nixosSystem`; offline, that input is replaced with
#
#   nix eval --override-input nixpkgs path:STAND_IN …
#
# where STAND_IN is this directory with nixpkgs' real library beside it, as
# `assemble.sh` puts it into the store: `lib/` is nixpkgs' `lib` (the real
# module system: evalModules, mkOption, types, mkIf, mkMerge, mkForce, …),
# unmodified; `nixos/` adds the one thing that lives outside `lib` in
# nixpkgs, `lib.nixosSystem`, with the few NixOS options cluster flakes set.
# There are no packages: `pkgs` holds inert stand-ins (see nixos/pkgs.nix).
{
  description = "nixpkgs stand-in: nixpkgs' real lib, plus a small lib.nixosSystem";

  outputs = { self }: {
    lib = (import ./lib).extend (final: prev: {
      nixosSystem = import ./nixos { lib = final; };
    });
  };
}
