# A Care-style deployment: plugs pinned pip-style by tag or branch.
plug "vitals" {
  source  = "git::https://git.example.org/care/vitals.git"
  version = "@v1.0.0"
}
plug "notifier" {
  source  = "git::https://git.example.org/care/notifier.git"
  version = "@main"
}
plug "legacy" {
  source = "https://downloads.example.org/plugins/legacy-1.2.zip"
}
plug "vendor" {
  source = "./uploads/vendor.fp"
}
