# This file is maintained automatically by "plugs lock".
# Manual edits may be lost in future updates.

plug "heart-rate" {
  source   = "./examples/plugins/heart-rate"
  revision = "724b35878a0659e061daa2f8cd650b39b13fcb7ae6da1096e7160fdbe312cae9"
  hash     = "h2:cks1h4oGWeBh2qL4zWULObE/y3rm2hCW5xYP2+MSyuk="
}

plug "legacy-step-count" {
  source   = "./examples/plugins/legacy-step-count"
  revision = "84c1a0110a6a814de457841370892c17bc06fb158d1760e8d9d264398a0bdef4"
  hash     = "h2:hMGgEQpqgU3kV4QTcIksF7wG+xWNF2Do2dJkOYoL3vQ="
}

plug "mqtt-shell" {
  source   = "./examples/plugins/mqtt-shell"
  revision = "d83ee2f149f663ba9d4fb898f54a5e74d2473560d72da5980d3c09c24d090c66"
  hash     = "h2:2D7i8Un2Y7qdT7iY9UpedNJHNWDXLaWYDTwJwk0JDGY="
}
