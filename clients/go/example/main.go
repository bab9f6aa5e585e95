// Command example streams a chat from a running Lattice gateway and asks it
// which model a request would run on, with the stubs `make gen` generates.
//
//	clients/go/run.sh -target 127.0.0.1:50051 "What is the capital of France? Answer in one word."
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	latticev1 "lattice.dev/clients/go/lattice/v1"
)

func main() {
	target := flag.String("target", "127.0.0.1:50051", "the gateway's gRPC address")
	model := flag.String("model", "", "a model id or expression; empty means the gateway's default")
	temperature := flag.Float64("temperature", 0, "sampling temperature; 0 is greedy")
	flag.Parse()
	prompt := strings.Join(flag.Args(), " ")
	if prompt == "" {
		prompt = "What is the capital of France? Answer in one word."
	}
	if err := run(*target, *model, float32(*temperature), prompt); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(target, model string, temperature float32, prompt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// With LATTICE_API_KEY set on the gateway, every call carries the key.
	if key := os.Getenv("LATTICE_API_KEY"); key != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "x-api-key", key)
	}
	// Plaintext for loopback; use grpc.WithTransportCredentials(credentials.NewTLS(...)) behind TLS.
	dialCtx, dialCancel := context.WithTimeout(ctx, 10*time.Second)
	defer dialCancel()
	conn, err := grpc.DialContext(dialCtx, target, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		return fmt.Errorf("dial %s: %w", target, err)
	}
	defer conn.Close()

	resolved, err := latticev1.NewResolveServiceClient(conn).Resolve(ctx, &latticev1.ResolveRequest{Model: model})
	if err != nil {
		return fmt.Errorf("Resolve: %w", err)
	}
	fmt.Printf("resolved %q to %s (backend %s)\n", model, resolved.GetResolution().GetModel(), resolved.GetResolution().GetBackend())

	request := &latticev1.ChatRequest{
		Model:       model,
		Temperature: &temperature,
		Messages: []*latticev1.Message{{
			Role:    latticev1.Role_ROLE_USER,
			Content: []*latticev1.ContentPart{{Part: &latticev1.ContentPart_Text{Text: prompt}}},
		}},
	}
	stream, err := latticev1.NewChatServiceClient(conn).StreamChat(ctx, request)
	if err != nil {
		return fmt.Errorf("StreamChat: %w", err)
	}
	for {
		message, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("StreamChat: %w", err)
		}
		if delta := message.GetDelta(); delta != nil {
			fmt.Print(delta.GetContent())
		}
		if done := message.GetDone(); done != nil {
			usage := done.GetUsage()
			fmt.Printf("\n[%s, %s, %d prompt + %d completion tokens]\n",
				message.GetModel(), done.GetFinishReason(), usage.GetPromptTokens(), usage.GetCompletionTokens())
		}
	}
}
