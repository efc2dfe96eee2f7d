// Command sdkclient does inside the VM what `aws sts get-caller-identity`
// does on an EC2 instance: the Go SDK's default chain with no configuration
// at all finds region and credentials at 169.254.169.254, then calls STS
// (the fake one, whose URL is the only argument).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func main() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithEC2IMDSRegion())
	if err != nil {
		fmt.Println("config:", err)
		os.Exit(1)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		fmt.Println("credentials:", err)
		os.Exit(1)
	}
	fmt.Println("region:", cfg.Region, "credentials from:", creds.Source)
	out, err := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(os.Args[1]) }).
		GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		fmt.Println("get-caller-identity:", err)
		os.Exit(1)
	}
	fmt.Println("get-caller-identity:", aws.ToString(out.Arn))
}
