# hectic-lab: the PRIMARY of the accord.tube cluster (128.140.75.58).
#
# It serves Synapse and PostgreSQL; bfs.poland.xray streams WAL from it.
# `nixflip promote bfs.poland.xray` rewrites the cluster block below (and the
# one in bfs.poland.xray.nix) to swap the roles; keep the values literal so
# it can.
{ inputs, flake, self }: { config, lib, pkgs, ... }: let
  matrixDomain = "accord.tube";
in {
  imports = [
    self.nixosModules.matrix-cluster
    inputs.sops-nix.nixosModules.sops
  ];

  networking.hostName = "hectic-lab";
  system.stateVersion = "24.05";

  hectic = {
    archetype.dev.enable = true;
    generic.matrix-cluster = {
      enable         = true;
      role           = "primary";
      inherit matrixDomain;
      publicIp       = "128.140.75.58";
      secretsFile    = config.sops.secrets."matrix/secrets".path;
      signingKeyFile = config.sops.secrets."matrix/signing-key".path;
      objectStorage.s3 = {
        bucket   = "accord-tube-media";
        region   = "eu-central-003";
        endpoint = "https://s3.eu-central-003.backblazeb2.com";
      };
      replication = {
        peerHost = "91.198.166.181";
        passwordFile = config.sops.secrets."postgres/replication".path;
        allowedSourceIPs = [ "91.198.166.181/32" ];
      };
      acme = {
        enable          = true;
        credentialsFile = config.sops.secrets."acme/porkbun".path;
      };
    };
  };

  # Both members declare the same secrets: whichever host is primary needs
  # them, and a flip must not depend on a host file gaining a secret.
  sops.defaultSopsFile = ../../../secrets/cluster.yaml;
  sops.secrets."matrix/secrets" = { owner = "matrix-synapse"; };
  sops.secrets."matrix/signing-key" = { owner = "matrix-synapse"; };
  sops.secrets."postgres/replication" = { owner = "postgres"; };
  sops.secrets."acme/porkbun" = { };

  services.openssh = {
    enable = true;
    settings.PasswordAuthentication = false;
  };

  networking.firewall.allowedTCPPorts = [ 22 80 443 8448 ];

  # nginx fronts Synapse on this host. Synapse listens on loopback, so the
  # upstream never names a cluster address and survives a flip unchanged.
  services.nginx = {
    enable = true;
    recommendedProxySettings = true;
    recommendedTlsSettings = true;
    virtualHosts.${matrixDomain} = {
      forceSSL = true;
      useACMEHost = matrixDomain;
      listen = [
        { addr = "0.0.0.0"; port = 443; ssl = true; }
        { addr = "0.0.0.0"; port = 8448; ssl = true; }
      ];
      locations."/_matrix".proxyPass = "http://127.0.0.1:8008";
      locations."/_synapse/client".proxyPass = "http://127.0.0.1:8008";
      locations."= /.well-known/matrix/server".extraConfig = ''
        default_type application/json;
        return 200 '{"m.server": "${matrixDomain}:443"}';
      '';
    };
  };

  users.users.root.openssh.authorizedKeys.keys = [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3Lo6ZqH1lYwPUcDf6y0rUkP5Wj8bDJd0bVYIVhk7u ops@hectic"
  ];
}
