"""Explicit authorization (MFMC §3.3.2): every face is fake until the user it is tagged
with consents; then it is real for the viewers that user's rule admits. The server keeps the
original photo so that it can restore a face on consent, and fakes a face again at the next
view after an untag. A face nobody can tag (its person has no account) is always fake.

Storage: server `photos` holds each original (kind "original"), `faces` each tag and its
state, `fakes` the fakes made on the server on first need. Devices hold nothing after the
upload.
"""
from __future__ import annotations

from bench.access.base import AccessModel, View


class AuthorizationModel(AccessModel):
    name = "authorization"
    section = "§3.3.2"

    def upload(self, photo_id):
        photo = self.photo(photo_id)
        image = self.read_photo(photo)
        h, w = image.shape[:2]
        self.storage.server.put_photo(photo_id, photo.uploader, "original", image, [f.face_id for f in photo.faces])
        for face in photo.faces:
            self.storage.server.put_face(face.face_id, photo_id, face.int_box(w, h), None, "untagged")
        self.uploaded.add(photo_id)

    def tag(self, face_id, user):
        face = self.face(face_id)
        if user not in self.platform.users:
            return  # only people with an account can be tagged
        if self.storage.server.face(face.face_id) is not None:
            self.storage.server.set_tag(face_id, user, "pending")

    def consent(self, face_id):
        known = self.storage.server.face(face_id)
        if known is not None and known[0] is not None:
            self.storage.server.set_tag(face_id, known[0], "consented")

    def untag(self, face_id):
        self.untag_on_server(face_id)

    def decide(self, face, viewer):
        tag, state = self.storage.server.face(face.face_id)
        if tag is None:
            return False, "not tagged"
        if state != "consented":
            return False, f"tagged {tag}, consent {state}"
        if self.platform.rule_permits(tag, viewer):
            return True, f"{tag} consented; rule {self.platform.users[tag].rule} admits the viewer"
        return False, f"{tag}'s rule {self.platform.users[tag].rule} excludes the viewer"

    def view(self, photo_id, viewer, render_image=True) -> View:
        return self.server_view(self.require_uploaded(photo_id), viewer, self.decide, render_image)
