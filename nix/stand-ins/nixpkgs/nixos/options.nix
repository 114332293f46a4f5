# The NixOS options that cluster flakes (the cluster module, the example,
# the fixtures, generated flakes) set, declared with the types NixOS gives
# them, so that definitions merge as on a real host: `lines` join, lists
# concatenate, attribute sets of units merge per unit. Anything else a host
# sets is an error here, as it is in NixOS: declare it below (with its
# NixOS type and default) rather than loosen the module system.
#
# Every option has a default, because `system.build.toplevel` forces every
# defined value (toplevel.nix) and a submodule's options count as defined.
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkOption mkEnableOption types;
  opt = type: default: description: mkOption { inherit type default description; };
  strList = opt (types.listOf types.str) [ ];

  # A value of a generated configuration file (homeserver.yaml): what
  # nixpkgs' `pkgs.formats.yaml { }` accepts, lists merging by concatenation.
  settingsValue = types.nullOr (types.oneOf [
    types.bool
    types.int
    types.float
    types.str
    types.path
    (types.attrsOf settingsValue)
    (types.listOf settingsValue)
  ]) // { description = "YAML value"; };

  # One systemd service, with the fields units in cluster flakes use.
  serviceModule = { name, ... }: {
    options = {
      enable = opt types.bool true "Whether the unit is installed.";
      description = opt types.str "" "The unit's Description=.";
      script = opt types.lines "" "Shell commands run as the service's ExecStart.";
      preStart = opt types.lines "" "Shell commands run before the service starts.";
      postStart = opt types.lines "" "Shell commands run after the service started.";
      path = opt (types.listOf (types.oneOf [ types.package types.str ])) [ ] "Packages on the script's PATH.";
      environment = opt (types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ]))) { } "Environment variables.";
      serviceConfig = opt (types.attrsOf types.anything) { } "The unit's [Service] section.";
      unitConfig = opt (types.attrsOf types.anything) { } "The unit's [Unit] section.";
      before = strList "Units this one starts before.";
      after = strList "Units this one starts after.";
      wants = strList "Units this one wants.";
      requires = strList "Units this one requires.";
      requiredBy = strList "Units that require this one.";
      wantedBy = strList "Units that want this one.";
      partOf = strList "Units this one is part of.";
      bindsTo = strList "Units this one is bound to.";
      restartIfChanged = opt types.bool true "Whether a changed unit is restarted on switch.";
      startAt = opt (types.either types.str (types.listOf types.str)) [ ] "Calendar times the unit starts at.";
    };
  };

  ensureUserModule = {
    options = {
      name = mkOption { type = types.str; description = "Role name."; };
      ensureDBOwnership = opt types.bool false "Whether the role owns the database of the same name.";
      ensureClauses = lib.genAttrs
        [ "superuser" "createrole" "createdb" "inherit" "login" "replication" "bypassrls" ]
        (clause: opt (types.nullOr types.bool) null "The role's ${clause} clause (null: left as it is).");
    };
  };

  userModule = { name, ... }: {
    options = {
      name = opt types.str name "The user name.";
      description = opt types.str "" "The user's full name.";
      isNormalUser = opt types.bool false "Whether this is a login user.";
      isSystemUser = opt types.bool false "Whether this is a system user.";
      group = opt types.str "" "The primary group.";
      extraGroups = strList "Supplementary groups.";
      home = opt types.path "/var/empty" "The home directory.";
      hashedPasswordFile = opt (types.nullOr types.str) null "File holding the password hash.";
      openssh.authorizedKeys.keys = strList "Public keys that may log in as this user.";
      openssh.authorizedKeys.keyFiles = opt (types.listOf types.path) [ ] "Files of public keys that may log in as this user.";
    };
  };

  hostNamePattern = "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$";
in
{
  options = {
    boot.isContainer = opt types.bool false "Whether the system runs in a container.";

    system.stateVersion = opt types.str lib.trivial.release "The NixOS release the host's state was created with.";

    networking.hostName = opt (types.strMatching hostNamePattern) "nixos" "The host name (a DNS label: no dots).";
    networking.firewall = {
      enable = opt types.bool true "Whether the firewall is on.";
      allowedTCPPorts = opt (types.listOf types.port) [ ] "TCP ports open to everyone.";
      allowedUDPPorts = opt (types.listOf types.port) [ ] "UDP ports open to everyone.";
      extraCommands = opt types.lines "" "iptables commands run when the firewall starts.";
      extraStopCommands = opt types.lines "" "iptables commands run when the firewall stops.";
      extraInputRules = opt types.lines "" "nftables rules of the input chain (the nftables-based firewall).";
    };
    networking.nftables.enable = opt types.bool false "Use the nftables-based firewall instead of iptables.";

    services.postgresql = {
      enable = mkEnableOption "PostgreSQL";
      enableTCPIP = opt types.bool false "Whether PostgreSQL listens on TCP.";
      package = opt types.package pkgs.postgresql_16 "The PostgreSQL package.";
      dataDir = opt types.path "/var/lib/postgresql/${config.services.postgresql.package.psqlSchema}" "The data directory.";
      settings = mkOption {
        type = types.submodule {
          freeformType = types.attrsOf (types.oneOf [ types.bool types.float types.int types.str ]);
          options.port = opt types.port 5432 "The port PostgreSQL listens on.";
        };
        default = { };
        description = "postgresql.conf settings.";
      };
      authentication = opt types.lines "" "pg_hba.conf lines, before the defaults.";
      ensureDatabases = strList "Databases created when missing.";
      ensureUsers = opt (types.listOf (types.submodule ensureUserModule)) [ ] "Roles created when missing.";
      initialScript = opt (types.nullOr types.path) null "SQL run once, right after initdb.";
    };

    services.matrix-synapse = {
      enable = mkEnableOption "Synapse";
      settings = mkOption {
        type = types.submodule { freeformType = types.attrsOf settingsValue; };
        default = { };
        description = "homeserver.yaml settings.";
      };
      extraConfigFiles = opt (types.listOf types.path) [ ] "Extra configuration files (for secrets).";
    };

    services.nginx = {
      enable = mkEnableOption "nginx";
      recommendedProxySettings = opt types.bool false "Whether to use nginx's recommended proxy settings.";
      recommendedTlsSettings = opt types.bool false "Whether to use nginx's recommended TLS settings.";
      recommendedGzipSettings = opt types.bool false "Whether to use nginx's recommended gzip settings.";
      recommendedOptimisation = opt types.bool false "Whether to use nginx's recommended optimisations.";
      virtualHosts = opt (types.attrsOf (types.attrsOf types.anything)) { } "Virtual hosts.";
    };

    services.openssh = {
      enable = mkEnableOption "the OpenSSH daemon";
      settings = mkOption {
        type = types.submodule { freeformType = types.attrsOf types.anything; };
        default = { };
        description = "sshd_config settings.";
      };
    };

    security.acme = {
      acceptTerms = opt types.bool false "Whether the CA's terms of service are accepted.";
      defaults = opt (types.attrsOf types.anything) { } "Defaults for every certificate.";
      certs = opt (types.attrsOf (types.attrsOf types.anything)) { } "Certificates to obtain.";
    };

    systemd.services = opt (types.attrsOf (types.submodule serviceModule)) { } "systemd services.";
    systemd.tmpfiles.rules = strList "tmpfiles.d rules.";

    users.users = opt (types.attrsOf (types.submodule userModule)) { } "User accounts.";
    users.groups = opt (types.attrsOf (types.attrsOf types.anything)) { } "Groups.";

    environment.systemPackages = opt (types.listOf types.package) [ ] "Packages in the system profile.";
    environment.etc = opt (types.attrsOf (types.attrsOf types.anything)) { } "Files in /etc.";
  };
}
