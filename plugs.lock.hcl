# This file is maintained automatically by "plugs lock".
# Manual edits may be lost in future updates.

plug "heart-rate" {
  source   = "./examples/plugins/heart-rate"
  revision = "edc8370e69c28e88dc087df06e3bf72bffc79bffb5390a3d87d6ed4bfc0488c6"
  hash     = "h1:7cg3DmnCjojcCH3wbjv3K//Hm/+1OQo9h9btS/wEiMY="
}

plug "legacy-step-count" {
  source   = "./examples/plugins/legacy-step-count"
  revision = "6ebca2a0bdc63f4c52d90fb50d1b80e2a9c744569fcc9ccb445cd5b1716ad7c0"
  hash     = "h1:bryioL3GP0xS2Q+1DRuA4qnHRFafzJzLRFzVsXFq18A="
}

plug "mqtt-shell" {
  source   = "./examples/plugins/mqtt-shell"
  revision = "7c742b97edf1e3390448a1abaec06cb5e30fe1dc97a717213551e412fac51a40"
  hash     = "h1:fHQrl+3x4zkESKGrrsBsteMP4dyXpxchNVHkEvrFGkA="
}
