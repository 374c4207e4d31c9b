"""The cast: who each character is (voice, face) and the checks that keep them the same."""
