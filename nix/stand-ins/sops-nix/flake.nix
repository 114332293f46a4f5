# sops-nix for evaluating cluster flakes where sops-nix cannot be downloaded
# (tests, CI, the offline demo): replaces a flake's `sops-nix` input with
#
#   nix eval --override-input sops-nix path:nix/stand-ins/sops-nix …
#
# `nixosModules.sops` declares the sops-nix options host files set, with
# sops-nix's names, types and defaults (sops.nix). It only declares them: it
# never decrypts anything or installs secrets on a host.
{
  description = "sops-nix stand-in: the options of sops-nix's NixOS module";

  outputs = { self }: {
    nixosModules.sops = import ./sops.nix;
    nixosModules.default = self.nixosModules.sops;
  };
}
