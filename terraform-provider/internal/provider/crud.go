package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/resource"
)

// readObject is the shared part of every resource's Read: it loads the state
// into m and fetches the object it names. An object deleted outside
// Terraform is removed from the state, so the next apply creates it again;
// then, and on any error (added to the diagnostics), ok is false.
func readObject[M, T any](ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse,
	m *M, kind string, id func(*M) string, get func(context.Context, string) (T, error),
) (out T, ok bool) {
	resp.Diagnostics.Append(req.State.Get(ctx, m)...)
	if resp.Diagnostics.HasError() {
		return out, false
	}
	out, err := get(ctx, id(m))
	if isNotFound(err) {
		resp.State.RemoveResource(ctx)
		return out, false
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, "Reading "+kind+" "+id(m), err)
		return out, false
	}
	return out, true
}

// deleteObject is every resource's Delete: it deletes the object the state
// names; an object already gone counts as deleted.
func deleteObject[M any](ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse,
	m *M, kind string, id func(*M) string, del func(context.Context, string) error,
) {
	resp.Diagnostics.Append(req.State.Get(ctx, m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := del(ctx, id(m)); err != nil && !isNotFound(err) {
		addAPIError(&resp.Diagnostics, "Deleting "+kind+" "+id(m), err)
	}
}
