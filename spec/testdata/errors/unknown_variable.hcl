variable "site" {
  default = "ward-3"
}
host = "edge-${var.sit}" # ERROR: Reference to undeclared input variable
plug "a" {
  source = "git::https://example.org/a.git"
  params = { site = var.site, other = var.nope } # ERROR: Reference to undeclared input variable
}
