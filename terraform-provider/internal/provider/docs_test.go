package provider

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	dsschema "github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	rschema "github.com/hashicorp/terraform-plugin-framework/resource/schema"
)

// TestDocsMentionEveryAttribute checks that the page of each resource and
// data source under docs/ names every attribute and block of its schema.
func TestDocsMentionEveryAttribute(t *testing.T) {
	ctx := context.Background()
	p := New("test")()
	check := func(page string, names []string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("..", "..", "docs", page))
		if err != nil {
			t.Errorf("missing doc page: %v", err)
			return
		}
		for _, n := range names {
			if !strings.Contains(string(b), "`"+n+"`") {
				t.Errorf("docs/%s does not mention `%s`", page, n)
			}
		}
	}
	for _, f := range p.Resources(ctx) {
		r := f()
		var md resource.MetadataResponse
		r.Metadata(ctx, resource.MetadataRequest{ProviderTypeName: "switchyard"}, &md)
		var sr resource.SchemaResponse
		r.Schema(ctx, resource.SchemaRequest{}, &sr)
		check("resources/"+strings.TrimPrefix(md.TypeName, "switchyard_")+".md", resourceNames(sr.Schema.Attributes, sr.Schema.Blocks))
	}
	for _, f := range p.DataSources(ctx) {
		d := f()
		var md datasource.MetadataResponse
		d.Metadata(ctx, datasource.MetadataRequest{ProviderTypeName: "switchyard"}, &md)
		var sr datasource.SchemaResponse
		d.Schema(ctx, datasource.SchemaRequest{}, &sr)
		check("data-sources/"+strings.TrimPrefix(md.TypeName, "switchyard_")+".md", dataSourceNames(sr.Schema.Attributes))
	}
}

// resourceNames returns the names of attrs and blocks, nested ones included.
func resourceNames(attrs map[string]rschema.Attribute, blocks map[string]rschema.Block) []string {
	var out []string
	for n, a := range attrs {
		out = append(out, n)
		if na, ok := a.(rschema.SingleNestedAttribute); ok {
			out = append(out, resourceNames(na.Attributes, nil)...)
		}
	}
	for n, b := range blocks {
		out = append(out, n)
		if lb, ok := b.(rschema.ListNestedBlock); ok {
			out = append(out, resourceNames(lb.NestedObject.Attributes, nil)...)
		}
	}
	return out
}

// dataSourceNames returns the names of attrs, nested ones included.
func dataSourceNames(attrs map[string]dsschema.Attribute) []string {
	var out []string
	for n, a := range attrs {
		out = append(out, n)
		switch na := a.(type) {
		case dsschema.SingleNestedAttribute:
			out = append(out, dataSourceNames(na.Attributes)...)
		case dsschema.ListNestedAttribute:
			out = append(out, dataSourceNames(na.NestedObject.Attributes)...)
		}
	}
	return out
}
