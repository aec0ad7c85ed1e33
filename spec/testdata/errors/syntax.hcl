plug "a" {
  source = "./x" "y" # ERROR: Missing newline after argument
}
