# matrix-cluster.nix: a Matrix Synapse homeserver on PostgreSQL streaming
# replication, spread over two or more NixOS hosts.
#
# Every member imports this module and sets `hectic.generic.matrix-cluster.*`.
# Exactly one member has role = "primary": it runs Synapse and accepts WAL
# streaming from the addresses in `replication.allowedSourceIPs`. The others
# have role = "standby": they run a hot-standby replica of the primary at
# `replication.peerHost` and keep Synapse off. nixflip flips these roles by
# rewriting host files, so every value it edits is a plain option here.
#
# Besides its own options it sets only standard NixOS ones
# (services.postgresql, services.matrix-synapse, networking.firewall,
# systemd.services, security.acme).
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkIf mkMerge mkOption types;

  cfg = config.hectic.generic.matrix-cluster;
  pg = config.services.postgresql;

  isPrimary = cfg.role == "primary";
  isStandby = cfg.role == "standby";
  synapse = cfg.effectiveSynapse;

  # libpq connection string of the primary, as a standby sees it. The
  # password lives in a passfile so that it never enters the Nix store.
  passfile = "/run/matrix-cluster/pgpass";
  primaryConninfo = lib.concatStringsSep " " [
    "host=${cfg.replication.peerHost}"
    "port=${toString cfg.replication.peerPort}"
    "user=${replicationUser}"
    "passfile=${passfile}"
    "sslmode=${cfg.replication.sslMode}"
  ];
  replicationUser = "replicator";
  passwordFileArg = lib.escapeShellArg (toString cfg.replication.passwordFile);

  # A field of a libpq passfile: ':' and '\' are escaped with '\'.
  escapePgpass = lib.replaceStrings [ "\\" ":" ] [ "\\\\" "\\:" ];

  # PostgreSQL's TLS key pair (ssl is on: standbys connect with hostssl).
  # Nothing else provides one, and without it PostgreSQL refuses to start, so
  # every member makes a self-signed pair once. The standbys' sslmode=require
  # encrypts without verifying the certificate, which a self-signed one is
  # enough for; point ssl_cert_file/ssl_key_file elsewhere for a real one.
  tlsDir = "/var/lib/matrix-cluster/postgresql-tls";

  isIPv6 = cidr: lib.hasInfix ":" cidr;
  pgPort = toString (pg.settings.port or 5432);

  # One firewall rule per allowed source: PostgreSQL is reachable from the
  # cluster members only, never from the whole internet. The iptables-based
  # firewall runs extraCommands; the nftables-based one
  # (networking.nftables.enable) refuses extraCommands and reads
  # extraInputRules, which go into its input chain.
  nftables = config.networking.nftables.enable;
  iptablesRule = cidr:
    "${if isIPv6 cidr then "ip6tables" else "iptables"} -A nixos-fw -p tcp --dport ${pgPort} -s ${cidr} -j nixos-fw-accept";
  nftablesRule = cidr:
    "${if isIPv6 cidr then "ip6" else "ip"} saddr ${cidr} tcp dport ${pgPort} accept";
in
{
  options.hectic.generic.matrix-cluster = {
    enable = lib.mkEnableOption "membership in the Matrix/PostgreSQL replication cluster";

    role = mkOption {
      type = types.enum [ "primary" "standby" ];
      # A forgotten role must never create a second primary (split brain).
      default = "standby";
      description = ''
        "primary" runs Synapse and accepts WAL streaming; "standby" runs a
        hot-standby replica of `replication.peerHost` and keeps Synapse off.
      '';
    };

    overrideEnableSynapse = mkOption {
      type = types.nullOr types.bool;
      default = null;
      description = ''
        Force Synapse on (true) or off (false) regardless of the role. null
        means: Synapse runs exactly on the primary.
      '';
    };

    effectiveSynapse = mkOption {
      type = types.bool;
      readOnly = true;
      default =
        if cfg.overrideEnableSynapse != null then cfg.overrideEnableSynapse
        else cfg.role == "primary";
      defaultText = lib.literalExpression ''
        if overrideEnableSynapse != null then overrideEnableSynapse else role == "primary"
      '';
      description = "Whether Synapse runs on this host (computed; do not set).";
    };

    secretsFile = mkOption {
      # types.path also accepts strings holding an absolute path, such as
      # `config.sops.secrets."matrix/secrets".path` ("/run/secrets/...").
      type = types.nullOr types.path;
      default = null;
      example = lib.literalExpression ''config.sops.secrets."matrix/secrets".path'';
      description = ''
        Extra Synapse configuration with the shared secrets (registration and
        macaroon secrets, S3 credentials). Required wherever Synapse runs.
      '';
    };

    signingKeyFile = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = ''
        The homeserver's signing key. Must be the same secret on every member:
        a new primary with another key is, to the federation, another server.
      '';
    };

    matrixDomain = mkOption {
      type = types.str;
      example = "example.org";
      description = "The Matrix server name; the same on every member.";
    };

    publicIp = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "This host's own public address, when it is worth stating.";
    };

    objectStorage.s3 = {
      bucket = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "Media bucket (synapse-s3-storage-provider); null keeps media on local disk. The same on every member.";
      };
      region = mkOption {
        type = types.str;
        default = "us-east-1";
        description = "Region of the bucket.";
      };
      endpoint = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "https://s3.eu-central-003.backblazeb2.com";
        description = "Endpoint URL for S3-compatible stores; null means AWS.";
      };
      prefix = mkOption {
        type = types.str;
        default = "";
        description = "Key prefix inside the bucket.";
      };
    };

    replication = {
      peerHost = mkOption {
        type = types.str;
        description = ''
          Address of the other node. On a standby: the primary it streams
          from. On the primary: the standby that becomes primary on a flip.
        '';
      };
      peerPort = mkOption {
        type = types.port;
        default = 5432;
        description = "PostgreSQL port on the peer.";
      };
      passwordFile = mkOption {
        type = types.nullOr types.path;
        default = null;
        description = "File holding the replication role's password (same secret on every member).";
      };
      allowedSourceIPs = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "192.0.2.10/32" "2001:db8::10/128" ];
        description = ''
          CIDRs that may stream WAL from this host while it is the primary:
          one `hostssl replication` pg_hba line and one firewall rule each.
          Standbys list the other members too, so that a later flip only
          changes roles.
        '';
      };
      sslMode = mkOption {
        type = types.str;
        default = "require";
        description = "libpq sslmode a standby uses to connect to the primary.";
      };
    };

    acme = {
      enable = lib.mkEnableOption "DNS-01 certificates for the Matrix domain";
      dnsProvider = mkOption {
        type = types.str;
        default = "porkbun";
        description = "lego DNS provider used for DNS-01 challenges.";
      };
      credentialsFile = mkOption {
        type = types.nullOr types.path;
        default = null;
        description = "Environment file with the DNS provider's API credentials.";
      };
    };
  };

  config = mkIf cfg.enable (mkMerge [
    # ---------------------------------------------------------- every member
    {
      assertions = [
        {
          assertion = !synapse || cfg.secretsFile != null;
          message = "hectic.generic.matrix-cluster: Synapse runs on this host (role = \"${cfg.role}\"), so secretsFile must be set.";
        }
        {
          assertion = !synapse || cfg.signingKeyFile != null;
          message = "hectic.generic.matrix-cluster: Synapse runs on this host, so signingKeyFile must be set.";
        }
        {
          assertion = cfg.replication.passwordFile != null;
          message = "hectic.generic.matrix-cluster: replication.passwordFile must be set on every member.";
        }
        {
          assertion = !cfg.acme.enable || cfg.acme.credentialsFile != null;
          message = "hectic.generic.matrix-cluster: acme.enable needs acme.credentialsFile.";
        }
      ];

      warnings = lib.optional (isStandby && synapse)
        "hectic.generic.matrix-cluster: Synapse is forced on for a standby; its database is read-only, and two Synapse instances for one server name split the federation view.";

      services.postgresql = {
        enable = true;
        enableTCPIP = true;
        # The same settings on both roles, so that a promoted standby is a
        # working primary without a restart and the old primary can rejoin.
        settings = {
          listen_addresses = lib.mkDefault "*";
          wal_level = "replica";
          max_wal_senders = 10;
          max_replication_slots = 10;
          # A former primary that wrote past a promotion rejoins with
          # pg_rewind, which needs hint-bit changes in the WAL and the WAL
          # back to the last common checkpoint.
          wal_log_hints = true;
          wal_keep_size = "2GB";
          hot_standby = true;
          hot_standby_feedback = true;
          password_encryption = "scram-sha-256";
          ssl = true;
          ssl_cert_file = lib.mkDefault "${tlsDir}/server.crt";
          ssl_key_file = lib.mkDefault "${tlsDir}/server.key";
        };
      };

      systemd.services.matrix-cluster-postgresql-tls = {
        description = "Create PostgreSQL's self-signed TLS certificate";
        before = [ "postgresql.service" ];
        requiredBy = [ "postgresql.service" ];
        wantedBy = [ "multi-user.target" ];
        path = [ pkgs.openssl pkgs.coreutils ];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
        };
        script = ''
          set -eu
          dir=${lib.escapeShellArg tlsDir}
          if [ -s "$dir/server.crt" ] && [ -s "$dir/server.key" ]; then
            exit 0
          fi
          install -d -m 0750 -o postgres -g postgres "$dir"
          # PostgreSQL insists on a key readable by its owner only.
          umask 077
          openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
            -subj ${lib.escapeShellArg "/CN=${config.networking.hostName}"} \
            -keyout "$dir/server.key.new" -out "$dir/server.crt.new"
          chown postgres:postgres "$dir/server.key.new" "$dir/server.crt.new"
          mv "$dir/server.key.new" "$dir/server.key"
          mv "$dir/server.crt.new" "$dir/server.crt"
        '';
      };

      services.matrix-synapse.enable = synapse;
    }

    # ------------------------------------------------------- Synapse hosts
    (mkIf synapse {
      services.matrix-synapse = {
        extraConfigFiles = lib.optional (cfg.secretsFile != null) cfg.secretsFile;
        settings = {
          server_name = cfg.matrixDomain;
          public_baseurl = "https://${cfg.matrixDomain}/";
          signing_key_path = cfg.signingKeyFile;
          # Synapse listens on loopback only; nginx on the same host fronts it.
          listeners = [{
            port = 8008;
            bind_addresses = [ "127.0.0.1" "::1" ];
            type = "http";
            tls = false;
            x_forwarded = true;
            resources = [{ names = [ "client" "federation" ]; compress = true; }];
          }];
          database = {
            name = "psycopg2";
            args = {
              user = "matrix-synapse";
              database = "matrix-synapse";
              host = "/run/postgresql";
            };
          };
          media_storage_providers = lib.optional (cfg.objectStorage.s3.bucket != null) {
            module = "s3_storage_provider.S3StorageProviderBackend";
            store_local = true;
            store_remote = true;
            store_synchronous = true;
            config = {
              inherit (cfg.objectStorage.s3) bucket prefix;
              region_name = cfg.objectStorage.s3.region;
            } // lib.optionalAttrs (cfg.objectStorage.s3.endpoint != null) {
              endpoint_url = cfg.objectStorage.s3.endpoint;
            };
          };
        };
      };
    })

    # ------------------------------------------------------------- primary
    (mkIf isPrimary {
      services.postgresql = {
        # One line per allowed standby; nothing else may stream WAL. The
        # second line lets a former primary rejoin with pg_rewind, which
        # reads this server's files over an ordinary connection.
        authentication = lib.concatMapStrings
          (cidr: "hostssl replication ${replicationUser} ${cidr} scram-sha-256\n"
            + "hostssl postgres ${replicationUser} ${cidr} scram-sha-256\n")
          cfg.replication.allowedSourceIPs;

        # ensureUsers runs in postgresql.service's post-start, which would fail
        # on a read-only standby; that is why this lives in the primary branch.
        # After a flip the role already exists: it came over with the WAL.
        ensureUsers = [{
          name = replicationUser;
          ensureClauses = { login = true; replication = true; };
        }];

        # Runs only when initdb creates a fresh cluster (i.e. on the first
        # primary); Synapse needs C collation.
        initialScript = pkgs.writeText "matrix-cluster-init.sql" ''
          CREATE ROLE "matrix-synapse" LOGIN;
          CREATE DATABASE "matrix-synapse" WITH OWNER "matrix-synapse"
            TEMPLATE template0 LC_COLLATE = 'C' LC_CTYPE = 'C';
        '';
      };

      # ensureUsers cannot take a password, and a password must not be in the
      # store: set it from the secret file after PostgreSQL is up. psql reads
      # the file itself (a backquoted \set), so the password is never on a
      # command line, where every local user could read it in /proc; the
      # statement comes from stdin so that :'password' quoting applies.
      systemd.services.matrix-cluster-replication-password = {
        description = "Set the PostgreSQL replication role's password from ${toString cfg.replication.passwordFile}";
        after = [ "postgresql.service" ];
        requires = [ "postgresql.service" ];
        wantedBy = [ "multi-user.target" ];
        path = [ pg.package pkgs.coreutils ];
        serviceConfig = {
          Type = "oneshot";
          User = "postgres";
          RemainAfterExit = true;
        };
        script = ''
          set -eu
          # A missing or empty file would set an empty password (PostgreSQL
          # then clears it) and the unit would still succeed.
          if [ ! -s ${passwordFileArg} ] || [ ! -r ${passwordFileArg} ]; then
            echo "matrix-cluster: "${passwordFileArg}" is missing, empty or unreadable." >&2
            exit 1
          fi
          psql --no-psqlrc -v ON_ERROR_STOP=1 <<'SQL'
          \set password `cat ${passwordFileArg}`
          ALTER ROLE ${replicationUser} WITH PASSWORD :'password';
          -- What pg_rewind reads from a source server, and nothing more.
          GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO ${replicationUser};
          GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO ${replicationUser};
          GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO ${replicationUser};
          GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO ${replicationUser};
          SQL
        '';
      };

      networking.firewall.extraCommands = mkIf (!nftables) (lib.concatMapStrings
        (cidr: iptablesRule cidr + "\n")
        cfg.replication.allowedSourceIPs);
      networking.firewall.extraInputRules = mkIf nftables (lib.concatMapStrings
        (cidr: nftablesRule cidr + "\n")
        cfg.replication.allowedSourceIPs);
    })

    # ------------------------------------------------------------- standby
    (mkIf isStandby {
      # primary_conninfo comes from a file the setup unit writes, because the
      # generated postgresql.conf lives in the read-only store.
      services.postgresql.settings.include_if_exists = "${pg.dataDir}/matrix-cluster-standby.conf";

      systemd.services.matrix-cluster-standby-setup = {
        description = "Configure PostgreSQL as a hot standby of ${cfg.replication.peerHost}";
        # Before postgresql.service and required by it: without a base backup
        # the NixOS unit would initdb an empty cluster and start it as a
        # second, empty primary. Failing here stops that.
        before = [ "postgresql.service" ];
        requiredBy = [ "postgresql.service" ];
        wantedBy = [ "multi-user.target" ];
        path = [ pkgs.coreutils pkgs.gnused ];
        serviceConfig = {
          Type = "oneshot";
          RemainAfterExit = true;
          RuntimeDirectory = "matrix-cluster";
          RuntimeDirectoryPreserve = true;
        };
        script = ''
          set -eu
          data=${lib.escapeShellArg pg.dataDir}
          if [ ! -f "$data/PG_VERSION" ]; then
            echo "matrix-cluster: $data is missing or not a PostgreSQL data directory." >&2
            echo "matrix-cluster: refusing to start a standby without a base backup; run as postgres:" >&2
            echo "  pg_basebackup -h ${cfg.replication.peerHost} -p ${toString cfg.replication.peerPort} -U ${replicationUser} -D $data -X stream" >&2
            exit 1
          fi

          # Without the password the standby cannot authenticate: fail here,
          # loudly, rather than write a passfile with an empty password.
          if [ ! -s ${passwordFileArg} ] || [ ! -r ${passwordFileArg} ]; then
            echo "matrix-cluster: "${passwordFileArg}" is missing, empty or unreadable." >&2
            exit 1
          fi

          # libpq passfile: host:port:database:user:password, with ':' and '\'
          # escaped in each field (an IPv6 peerHost, or the password, may
          # contain them).
          install -m 0600 -o postgres -g postgres /dev/null ${passfile}
          # Two lines: streaming, and the ordinary connection pg_rewind
          # makes when this host rejoins after a failover.
          for db in replication postgres; do
            printf '%s:%s:%s:%s:%s\n' \
              ${lib.escapeShellArg (escapePgpass cfg.replication.peerHost)} ${toString cfg.replication.peerPort} \
              "$db" ${replicationUser} "$(sed -e 's/[\\:]/\\&/g' ${passwordFileArg})"
          done > ${passfile}

          install -m 0600 -o postgres -g postgres /dev/null "$data/matrix-cluster-standby.conf"
          echo ${lib.escapeShellArg "primary_conninfo = '${primaryConninfo}'"} > "$data/matrix-cluster-standby.conf"

          # standby.signal makes PostgreSQL start in recovery (hot standby).
          install -m 0600 -o postgres -g postgres /dev/null "$data/standby.signal"
        '';
      };
    })

    # ---------------------------------------------------------------- ACME
    (mkIf cfg.acme.enable {
      security.acme = {
        acceptTerms = true;
        certs.${cfg.matrixDomain} = {
          dnsProvider = cfg.acme.dnsProvider;
          environmentFile = cfg.acme.credentialsFile;
          group = "nginx";
        };
      };
    })
  ]);
}
