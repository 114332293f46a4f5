# {{ name }}: a member of the {{ domain }} Matrix cluster ({{ address }}).
#
# The primary runs Synapse and PostgreSQL; a standby runs PostgreSQL as a hot
# standby of its peerHost and keeps Synapse off. The role is `role` below:
# `nixflip promote` rewrites this cluster block; keep its values literal
# so it can. Secrets are read from files at run time (never put them
# in the Nix store): with sops-nix, write config.sops.secrets."NAME".path.
{{ header }}
{% if lets %}
let
{% for line in lets %}
  {{ line }}
{% endfor %}
in
{% endif %}
{
  imports = [
{% for i in imports %}
    {{ i }}
{% endfor %}
  ];

  networking.hostName = {{ hostname | nix }};
  system.stateVersion = {{ state_version | nix }};

  hectic.generic.matrix-cluster = {
    enable = true;
    role = {{ role | nix }};
{% if domain_expr is not none %}
    matrixDomain = {{ domain_expr }};
{% endif %}
    publicIp = {{ address | nix }};
{% if secrets_file is not none %}
    secretsFile = {{ secrets_file }};
{% endif %}
{% if signing_key_file is not none %}
    signingKeyFile = {{ signing_key_file }};
{% endif %}
{% for line in extra %}
    {{ line }}
{% endfor %}
    replication = {
      peerHost = {{ peer | nix }};
{% if password_file is not none %}
      passwordFile = {{ password_file }};
{% endif %}
{% for line in replication_extra %}
      {{ line }}
{% endfor %}
      allowedSourceIPs = [{% for c in allowed %} {{ c | nix }}{% endfor %} ];
    };
  };
{% if tail %}

{% for line in tail %}
{% if line %}
  {{ line }}
{% else %}

{% endif %}
{% endfor %}
{% endif %}
}
