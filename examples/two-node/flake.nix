# A two-node Matrix cluster: hectic-lab (primary) and bfs.poland.xray (standby).
#
# Hosts are built with nixpkgs' `lib.nixosSystem` and read their secrets with
# sops-nix. `nix flake lock` pins both inputs on first use (no flake.lock is
# committed). Offline, replace them as nixflip's tests and demo do:
#
#   nix eval --override-input nixpkgs path:STAND_IN --override-input sops-nix path:../../nix/stand-ins/sops-nix \
#     .#nixosConfigurations.'"hectic-lab|x86_64-linux"'.config.hectic.generic.matrix-cluster.role
#
# (STAND_IN: `bash ../../nix/stand-ins/nixpkgs/assemble.sh` prints it.)
{
  description = "nixflip example: a two-node Matrix Synapse cluster on PostgreSQL streaming replication";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";
    sops-nix.url = "github:Mic92/sops-nix";
    sops-nix.inputs.nixpkgs.follows = "nixpkgs";
  };

  outputs = { self, nixpkgs, ... }@inputs:
    let
      flake = self;

      # Host files are `{ inputs, flake, self }: <NixOS module>`. `_file`
      # makes error messages name the host file instead of "<inline module>".
      host = system: file: nixpkgs.lib.nixosSystem {
        inherit system;
        modules = [
          ./nixos/module/archetype.nix
          { _file = file; imports = [ (import file { inherit inputs flake self; }) ]; }
        ];
      };
    in
    {
      nixosModules.matrix-cluster = import ./nixos/module/matrix-cluster.nix;

      nixosConfigurations = {
        "hectic-lab|x86_64-linux" = host "x86_64-linux" ./nixos/system/hectic-lab/hectic-lab.nix;
        "bfs.poland.xray|x86_64-linux" = host "x86_64-linux" ./nixos/system/bfs.poland.xray/bfs.poland.xray.nix;
      };
    };
}
