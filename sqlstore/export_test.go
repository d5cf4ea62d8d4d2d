package sqlstore

// SetMaxVersion makes db migrate no further than schema version when it
// opens, so that a test can build a database as an older Tidings left it.
func SetMaxVersion(db *DB, version int) { db.maxVersion = version }
