# bfs.poland.xray: a STANDBY of the accord.tube cluster (91.198.166.181).
#
# PostgreSQL runs as a hot standby of hectic-lab (128.140.75.58); Synapse is
# off. allowedSourceIPs already names hectic-lab, so that promoting this host
# later only flips roles and peer addresses. Its own address is not written
# here: nixflip infers it from hectic-lab's replication.peerHost.
{ inputs, flake, self }: { config, lib, pkgs, ... }:
{
  imports = [
    self.nixosModules.matrix-cluster
    inputs.sops-nix.nixosModules.sops
  ];

  networking.hostName = "bfs-poland-xray";
  system.stateVersion = "24.05";

  hectic.generic.matrix-cluster.enable                       = true;
  hectic.generic.matrix-cluster.role                         = "standby";
  hectic.generic.matrix-cluster.matrixDomain                 = "accord.tube";
  hectic.generic.matrix-cluster.secretsFile                  = config.sops.secrets."matrix/secrets".path;
  hectic.generic.matrix-cluster.signingKeyFile               = config.sops.secrets."matrix/signing-key".path;
  hectic.generic.matrix-cluster.objectStorage.s3.bucket      = "accord-tube-media";
  hectic.generic.matrix-cluster.objectStorage.s3.region      = "eu-central-003";
  hectic.generic.matrix-cluster.objectStorage.s3.endpoint    = "https://s3.eu-central-003.backblazeb2.com";
  hectic.generic.matrix-cluster.replication.peerHost         = "128.140.75.58";
  hectic.generic.matrix-cluster.replication.passwordFile     = config.sops.secrets."postgres/replication".path;
  hectic.generic.matrix-cluster.replication.allowedSourceIPs = [ "128.140.75.58/32" ];

  # The same secrets as on hectic-lab (see the comment there).
  sops.defaultSopsFile = ../../../secrets/cluster.yaml;
  sops.secrets."matrix/secrets" = { owner = "matrix-synapse"; };
  sops.secrets."matrix/signing-key" = { owner = "matrix-synapse"; };
  sops.secrets."postgres/replication" = { owner = "postgres"; };

  services.openssh = {
    enable = true;
    settings.PasswordAuthentication = false;
  };

  networking.firewall.allowedTCPPorts = [ 22 ];

  users.users.root.openssh.authorizedKeys.keys = [
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3Lo6ZqH1lYwPUcDf6y0rUkP5Wj8bDJd0bVYIVhk7u ops@hectic"
  ];
}
