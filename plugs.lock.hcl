# This file is maintained automatically by "plugs lock".
# Manual edits may be lost in future updates.

plug "heart-rate" {
  source   = "./examples/plugins/heart-rate"
  revision = "4f8dee281b2d43cd31f112c2ee61985b1fe80f0c1cc9b0dce8847886a14d30f9"
  hash     = "h2:T43uKBstQ80x8RLC7mGYWx/oDwwcybDc6IR4hqFNMPk="
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
