# nixflip's own flake: the CLI as a package and app, the cluster module it
# edits (and `nixflip init` generates) as a NixOS module, a dev shell, checks.
#
#   nix run github:OWNER/nixflip -- status
#   imports = [ inputs.nixflip.nixosModules.matrix-cluster ];
{
  description = "nixflip: flip primary/standby roles in a NixOS cluster flake, losslessly, checked and proven with nix eval";

  # nixflip needs rustc >= 1.89 (Cargo.toml's rust-version; std's File::try_lock):
  # nixos-25.11 or later. No flake.lock is committed (this repository is built
  # offline, where one cannot be made): `nix flake lock` pins it on first use.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs = { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAllSystems = f: lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
      cargo = builtins.fromTOML (builtins.readFile ./Cargo.toml);

      # The module on both roles, evaluated as a container (no boot loader or
      # file systems needed): its assertions and option types are the check.
      clusterHost = system: role: lib.nixosSystem {
        inherit system;
        modules = [
          self.nixosModules.matrix-cluster
          {
            boot.isContainer = true;
            system.stateVersion = "24.11";
            hectic.generic.matrix-cluster = {
              enable = true;
              inherit role;
              matrixDomain = "example.org";
              secretsFile = "/run/secrets/matrix/secrets";
              signingKeyFile = "/run/secrets/matrix/signing-key";
              replication = {
                peerHost = if role == "primary" then "192.0.2.2" else "192.0.2.1";
                passwordFile = "/run/secrets/postgres/replication";
                allowedSourceIPs = [ (if role == "primary" then "192.0.2.2/32" else "192.0.2.1/32") ];
              };
            };
          }
        ];
      };
    in
    {
      # The same text as templates/matrix-cluster.nix, which `nixflip init`
      # writes into new flakes (tests/generate.rs asserts it).
      nixosModules.matrix-cluster = import ./nix/matrix-cluster.nix;
      nixosModules.default = self.nixosModules.matrix-cluster;

      packages = forAllSystems (system: pkgs: {
        default = pkgs.rustPlatform.buildRustPackage {
          pname = cargo.package.name;
          version = cargo.package.version;
          src = lib.cleanSource ./.;
          cargoLock.lockFile = ./Cargo.lock;
          # Integration tests call `nix eval` and git on fixture flakes, which
          # the build sandbox cannot do; `checks` and CI run them instead.
          doCheck = false;
          meta = {
            description = cargo.package.description;
            license = lib.licenses.mit;
            mainProgram = "nixflip";
          };
        };
      });

      apps = forAllSystems (system: pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${system}.default}/bin/nixflip";
        };
      });

      devShells = forAllSystems (system: pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${system}.default ];
          packages = [ pkgs.cargo pkgs.rustc pkgs.clippy pkgs.rustfmt pkgs.nix pkgs.git ];
        };
      });

      checks = forAllSystems (system: pkgs: {
        package = self.packages.${system}.default;
      } // lib.optionalAttrs (lib.hasSuffix "-linux" system) {
        module-primary = (clusterHost system "primary").config.system.build.toplevel;
        module-standby = (clusterHost system "standby").config.system.build.toplevel;
      });
    };
}
