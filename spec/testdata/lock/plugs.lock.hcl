# This file is maintained automatically by "plugs lock".
# Commit it next to plugs.hcl.

plug "heart-rate" {
  source     = "git::https://git.example.org/acme/heart-rate.git"
  constraint = "~> 1.2"
  version    = "v1.2.3"
  revision   = "3f2c1a9e0b7d4c5a8e6f1b2d3c4a5e6f7a8b9c0d"
  hash       = "h1:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
}

plug "old" {
  source   = "./plugins/old"
  revision = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
  hash     = "h1:n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="
}
