package install

// ParseEnvFileForTest exposes parseEnvFile to the black-box tests: what the
// service finds in the environment file an install wrote.
var ParseEnvFileForTest = parseEnvFile
