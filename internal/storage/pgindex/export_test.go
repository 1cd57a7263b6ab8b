package pgindex

// SQLListInstances is the statement of ListInstances, for its plan test.
var SQLListInstances = sqlListInstances
