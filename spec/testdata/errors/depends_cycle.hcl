plug "a" {
  source     = "git::https://example.org/a.git"
  depends_on = ["b"]
}
plug "b" {
  source     = "git::https://example.org/b.git"
  depends_on = ["c"]
}
plug "c" {
  source     = "git::https://example.org/c.git"
  depends_on = ["a"] # ERROR: Dependency cycle
}
plug "self" {
  source     = "git::https://example.org/self.git"
  depends_on = ["self"] # ERROR: Dependency cycle
}
