plug "a" {
  source  = "git::https://example.org/a.git"
  version = "~> " # ERROR: Invalid version constraint
}
plug "b" {
  source  = "git::https://example.org/b.git"
  version = ">= 1.0,, 2" # ERROR: Invalid version constraint
}
plug "tag" {
  source  = "git::https://example.org/c.git"
  version = "v1.2.3"
}
plug "branch" {
  source  = "git::https://example.org/c.git"
  version = "release/2024-q1"
}
plug "commit" {
  source  = "git::https://example.org/c.git"
  version = "3f2c1a9e0b7d4c5a8e6f1b2d3c4a5e6f7a8b9c0d"
}
plug "constraint" {
  source  = "git::https://example.org/c.git"
  version = ">= 1.0, < 2.0"
}
