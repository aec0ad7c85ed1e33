plug "empty" {
  source = "./empty-plugin" # ERROR: Missing plugin manifest
}
plug "nowhere" {
  source = "./no-such-folder" # ERROR: Plugin source not found
}
plug "remote" {
  source = "git::https://example.org/remote.git" # WARNING: Manifest not fetched yet
}
plug "inline" {
  source = "./empty-plugin"
  plugin {
    command = ["sh", "-c", "sleep 1000"]
  }
}
