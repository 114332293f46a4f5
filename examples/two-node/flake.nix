# A two-node Matrix cluster: hectic-lab (primary) and bfs.poland.xray (standby).
#
# A real flake takes `nixpkgs` and `sops-nix` as inputs and builds hosts with
# `nixpkgs.lib.nixosSystem`, importing `sops-nix.nixosModules.sops`. This one
# has no inputs so that it evaluates offline (CI, tests, a first look): it
# carries nix/lite.nix, a small NixOS-like module evaluator, and a stand-in
# for sops-nix in nixos/module/sops.nix. The host files and the cluster module
# are written exactly as for the real thing.
#
#   nix eval .#nixosConfigurations.'"hectic-lab|x86_64-linux"'.config.hectic.generic.matrix-cluster.role
{
  description = "nixflip example: a two-node Matrix Synapse cluster on PostgreSQL streaming replication";

  outputs = { self }:
    let
      lite = import ./nix/lite.nix;
      inputs = { };
      flake = self;

      # Host files are `{ inputs, flake, self }: <NixOS module>`. `_file`
      # makes error messages name the host file instead of "<inline module>".
      host = system: file: lite.nixosSystem {
        inherit system;
        modules = [{ _file = file; imports = [ (import file { inherit inputs flake self; }) ]; }];
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
