"""The Textual app and its screens. Only screens/ and themes/ import textual."""
