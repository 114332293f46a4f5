# The options of sops-nix's NixOS module that host files set, with sops-nix's
# names, types and defaults: a secret's `key` defaults to its attribute name,
# its `sopsFile` to `sops.defaultSopsFile`, and its decrypted file appears at
# `/run/secrets/<name>` on the host. It declares them and does nothing else.
{ config, lib, ... }:

let
  inherit (lib) mkOption types;
  cfg = config.sops;

  secretModule = { name, ... }: {
    options = {
      name = mkOption {
        type = types.str;
        default = name;
        description = "Name of the secret (the attribute name).";
      };
      key = mkOption {
        type = types.str;
        default = name;
        description = "Key in the SOPS file; nested YAML keys are separated by '/'.";
      };
      sopsFile = mkOption {
        type = types.path;
        default = cfg.defaultSopsFile;
        description = "The SOPS file holding the secret.";
      };
      path = mkOption {
        type = types.str;
        default = "/run/secrets/${name}";
        description = "Where the decrypted secret is placed.";
      };
      format = mkOption {
        type = types.enum [ "yaml" "json" "binary" "dotenv" "ini" ];
        default = "yaml";
        description = "Format of the SOPS file.";
      };
      owner = mkOption {
        type = types.str;
        default = "root";
        description = "User owning the decrypted file.";
      };
      group = mkOption {
        type = types.str;
        default = "root";
        description = "Group owning the decrypted file.";
      };
      mode = mkOption {
        type = types.str;
        default = "0400";
        description = "Permissions of the decrypted file.";
      };
      restartUnits = mkOption {
        type = types.listOf types.str;
        default = [ ];
        description = "Units restarted when the secret changes.";
      };
    };
  };
in
{
  options.sops = {
    defaultSopsFile = mkOption {
      type = types.path;
      description = "SOPS file used by secrets that do not name their own.";
    };
    secrets = mkOption {
      type = types.attrsOf (types.submodule secretModule);
      default = { };
      description = "Secrets decrypted at activation.";
    };
    age = {
      sshKeyPaths = mkOption {
        type = types.listOf types.path;
        default = [ "/etc/ssh/ssh_host_ed25519_key" ];
        description = "SSH host keys converted to age identities for decryption.";
      };
      keyFile = mkOption {
        type = types.nullOr types.path;
        default = null;
        description = "An age identity file used for decryption.";
      };
    };
  };
}
