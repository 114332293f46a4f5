# hectic.archetype: the operator's host profiles. The hosts set
# `hectic.archetype.dev.enable` next to the cluster options; this declares it
# so that the example evaluates, and stands for the profile modules of a real
# deployment. It configures nothing.
{ lib, ... }:
{
  options.hectic.archetype.dev.enable = lib.mkEnableOption "the development host profile";
}
