"""The BagIt engine: create (writer), read (reader), validate (validate). RFC 8493."""
