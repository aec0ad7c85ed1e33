plug "heart-rate" {
  source  = "git::https://git.example.org/acme/heart-rate.git"
  version = "~> 1.3" # WARNING: Lock entry out of date
}
plug "new" { # WARNING: Plug not locked
  source = "git::https://git.example.org/acme/new.git"
}
