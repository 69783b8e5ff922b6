"""Access rules (MFMC §3.3.3, Fig. 2): each user's device holds the enrolled embeddings of
the user and their friends. At upload the uploader's device recognises each face among them
with the configured recognizer and threshold (the model's matcher): a recognised face is
tagged with that friend and sent real; an unknown face is faked on the device, so its
original never reaches the server. At view time the server renders per viewer: a tagged
face is real when its (recognised) owner's rule admits the viewer, else covered by a fake
the server makes once from the stored photo. An untag removes the tag: fake at the next view.

Storage: server `embeddings` (every user's enrolment, the channel that syncs them to
friends' devices), `photos` (kind "original": unknown faces already faked), `faces` (the
recognised tags), `fakes`; each device `embeddings` of the user and their friends. The
recognizer's errors are the model's leaks (a stranger taken for a friend is shown real to
the friend's audience) and over-fakes (a friend not recognised is faked for everyone).
"""
from __future__ import annotations

from bench.access.base import AccessModel, View
from bench.access.storage import SHARED_FAKE
from bench.status import is_left_real


class RulesModel(AccessModel):
    name = "rules"
    section = "§3.3.3"
    uses_recognizer = True

    def setup(self):
        server = self.storage.server
        for user_id, user in self.platform.users.items():
            server.put_embeddings(user_id, user.enrolment)
        for user_id in self.platform.users:
            self.sync(user_id)

    def sync(self, user_id: str) -> None:
        """The device of `user_id` receives the user's and their friends' embeddings."""
        device = self.storage.client(user_id)
        for other in sorted({user_id, *self.platform.friends(user_id)}):
            device.put_embeddings(other, self.platform.users[other].enrolment)

    def upload(self, photo_id):
        photo = self.photo(photo_id)
        device = self.storage.client(photo.uploader)
        known = device.embeddings()
        for user in {photo.uploader, *self.platform.friends(photo.uploader)} - set(known):
            known[user] = self.platform.users[user].enrolment[:0]  # enrolled nothing: cannot match
        image = self.read_photo(photo)
        h, w = image.shape[:2]
        real, tags = [], {}
        for face in photo.faces:
            user = self.matcher.match(face, known)
            if user is not None:
                real.append(face.face_id)
                tags[face.face_id] = user
                continue
            image, status = self.apply_fake(image, face, SHARED_FAKE, "upload")
            if is_left_real(status):
                real.append(face.face_id)  # nothing could cover it: the server holds it real
        server = self.storage.server
        server.put_photo(photo_id, photo.uploader, "original", image, real)
        for face in photo.faces:
            user = tags.get(face.face_id)
            server.put_face(face.face_id, photo_id, face.int_box(w, h), user,
                            "recognized" if user else "faked on the uploader's device")
        self.uploaded.add(photo_id)

    def untag(self, face_id):
        self.untag_on_server(face_id)

    def decide(self, face, viewer):
        tag, state = self.storage.server.face(face.face_id)
        if tag is None:
            return False, f"no tag ({state})"
        rule = self.platform.users[tag].rule
        if self.platform.rule_permits(tag, viewer):
            return True, f"recognized as {tag}; rule {rule} admits the viewer"
        return False, f"recognized as {tag}; rule {rule} excludes the viewer"

    def view(self, photo_id, viewer, render_image=True) -> View:
        return self.server_view(self.require_uploaded(photo_id), viewer, self.decide, render_image)
