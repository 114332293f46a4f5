# The `pkgs` of the nixpkgs stand-in: inert package values, enough for
# modules to refer to packages (`${pkgs.openssl}/bin/openssl`, a default
# `package` option, `pkgs.writeText`). They must never be mistaken for real
# packages: nothing here can be built, and a package not listed is missing.
{ lib, system }:

let
  # What NixOS modules read of a package: a derivation-typed attribute set
  # that interpolates to a store path (this one is never realised).
  package = name: attrs: {
    type = "derivation";
    inherit name system;
    outPath = "/nix/store/${builtins.substring 0 32 (builtins.hashString "sha256" "${system}-${name}")}-${name}";
    meta = { };
  } // attrs;

  named = pname: version: package "${pname}-${version}" { inherit pname version; };

  postgresql = version: package "postgresql-${version}" {
    pname = "postgresql";
    inherit version;
    psqlSchema = version;
  };
in
{
  inherit lib system;
  stdenv = {
    hostPlatform = { inherit system; isLinux = lib.hasSuffix "-linux" system; };
    isLinux = lib.hasSuffix "-linux" system;
  };

  writeText = name: text: package name { inherit text; };
  writeScript = name: text: package name { inherit text; };
  writeShellScript = name: text: package name { text = "#!/bin/sh\n" + text; };
  writeShellScriptBin = name: text: package name { text = "#!/bin/sh\n" + text; meta.mainProgram = name; };

  postgresql = postgresql "16";
  postgresql_14 = postgresql "14";
  postgresql_15 = postgresql "15";
  postgresql_16 = postgresql "16";
  postgresql_17 = postgresql "17";

  age = named "age" "1.2.1";
  bash = named "bash" "5.2p37";
  coreutils = named "coreutils" "9.7";
  curl = named "curl" "8.14.1";
  gnugrep = named "gnugrep" "3.12";
  gnused = named "gnused" "4.9";
  iproute2 = named "iproute2" "6.14.0";
  iptables = named "iptables" "1.8.11";
  jq = named "jq" "1.7.1";
  matrix-synapse = named "matrix-synapse" "1.131.0";
  nginx = named "nginx" "1.28.0";
  openssh = named "openssh" "10.0p2";
  openssl = named "openssl" "3.4.1";
  sops = named "sops" "3.10.2";
  util-linux = named "util-linux" "2.41";
}
