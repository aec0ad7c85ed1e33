plug "bridge" {
  source = "git::https://example.org/bridge.git"
}
plug "a" {
  source     = "git::https://example.org/a.git"
  depends_on = ["brige"] # ERROR: Reference to undeclared plug
}
