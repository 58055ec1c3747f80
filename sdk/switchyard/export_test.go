package switchyard

import "connectrpc.com/connect"

// WrapErrorForTest exposes wrapError to the black-box tests.
func WrapErrorForTest(err *connect.Error) error { return wrapError(err) }
