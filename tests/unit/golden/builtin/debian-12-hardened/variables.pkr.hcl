variable "image_version" {
  type        = string
  description = "The gallery image version this build publishes (Major.Minor.Patch)."
}

variable "base_image_version" {
  type        = string
  default     = "latest"
  description = "The marketplace version of the base image; the build passes the concrete version it resolved \"latest\" to."
}

variable "source_commit" {
  type        = string
  default     = "unknown"
  description = "The source commit the image is built from (recorded in tags and the image marker)."
}

variable "pipeline_run" {
  type        = string
  default     = "local"
  description = "The pipeline run that built the image (Azure DevOps Build.BuildId)."
}

variable "subscription_id" {
  type        = string
  default     = ""
  description = "The subscription of the gallery and the build."
}

variable "client_id" {
  type    = string
  default = env("ARM_CLIENT_ID")
}

variable "client_secret" {
  type      = string
  default   = env("ARM_CLIENT_SECRET")
  sensitive = true
}

variable "tenant_id" {
  type    = string
  default = env("ARM_TENANT_ID")
}

variable "use_azure_cli_auth" {
  type        = bool
  default     = false
  description = "Authenticate with the Azure CLI's login (Azure DevOps AzureCLI@2)."
}

variable "preview" {
  type        = bool
  default     = false
  description = "invoke build --preview: publish with shallow replication (never promoted)."
}

variable "sandbox_host" {
  type        = string
  default     = "127.0.0.1"
  description = "Sandbox target: the build VM's address."
}

variable "sandbox_port" {
  type    = number
  default = 2222
}

variable "sandbox_username" {
  type    = string
  default = "packer"
}

variable "sandbox_private_key_file" {
  type        = string
  default     = ""
  description = "Sandbox target: the per-run SSH key (a path; the key never appears here)."
}
