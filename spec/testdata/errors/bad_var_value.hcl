# VARS: port=abc undeclared=1
# WARNING: Value for undeclared variable
variable "port" { # ERROR: Invalid value for input variable
  type = number
}
variable "needed" { # ERROR: No value for required variable
  type = string
}
variable "typed" {
  type    = bool
  default = "maybe" # ERROR: Invalid default value for variable
}
