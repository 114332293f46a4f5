# A module that imports a path and an inline module.
{ lib, ... }: {
  imports = [
    ./imported-twice.nix
    ({ config, ... }: { test.text = "from inline import"; })
  ];
  test.text = "from chain.nix";
}
