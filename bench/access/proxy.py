"""Disclosure by proxy (MFMC §3.3.1): the uploader decides, on their own device, which
faces stay real; every other face is faked there, the original is disposed, and only the
faked photo reaches the server, which shows that one photo to every viewer.

Who the uploader keeps real (`keep`):
    public   faces of people who allow everyone (the uploader, acting as their proxy, asks
             them; one photo for all viewers can be real only for them). Never leaks.
    friends  the uploader's own face and their friends' faces, as uploaders do when nobody
             asks the people in the photo: leaks to every viewer the owner did not allow.
The uploader recognises their friends in person: the model's matcher, given the embeddings
of the uploader and their friends (ground truth in the simulation: a human does not confuse
a friend). An untag later fakes the face inside the published photo on the server (the
only copy left), so it takes effect at the next view; nothing can make a faked face real
again: its original is gone. There is one fake per face (one published photo), whatever
`per_viewer_fakes` says.
"""
from __future__ import annotations

from bench.access.base import AccessModel, FaceOutcome, View
from bench.access.storage import SHARED_FAKE
from bench.status import is_left_real

KEEP = ("public", "friends")


class ProxyModel(AccessModel):
    name = "proxy"
    section = "§3.3.1"

    def __init__(self, keep: str = "public", per_viewer_fakes: bool = False):
        super().__init__(per_viewer_fakes=per_viewer_fakes)
        if keep not in KEEP:
            raise ValueError(f"proxy keep={keep!r}; known: {', '.join(KEEP)}")
        self.keep = keep

    def keeps(self, uploader: str, user: str | None) -> bool:
        if user is None:
            return False
        if self.keep == "friends":
            return True  # the matcher only knows the uploader and their friends
        return self.platform.users[user].rule == "everyone"

    def upload(self, photo_id):
        photo = self.photo(photo_id)
        client = self.storage.client(photo.uploader)
        image = self.read_photo(photo)
        client.put_photo(photo_id, photo.uploader, "original", image, [f.face_id for f in photo.faces])
        known = {u: self.platform.users[u].enrolment for u in {photo.uploader, *self.platform.friends(photo.uploader)}}
        kept, left_real = [], []
        for face in photo.faces:
            user = self.matcher.match(face, known)
            if self.keeps(photo.uploader, user):
                kept.append(face.face_id)
                self.storage.server.put_face(face.face_id, photo_id, face.int_box(image.shape[1], image.shape[0]),
                                             user, "kept")
                continue
            image, status = self.apply_fake(image, face, SHARED_FAKE, "upload")
            if is_left_real(status):
                left_real.append(face.face_id)  # nothing could cover it: the photo says so
            self.storage.server.put_face(face.face_id, photo_id, face.int_box(image.shape[1], image.shape[0]),
                                         None, "faked on the uploader's device")
        self.storage.server.put_photo(photo_id, photo.uploader, "published", image, kept + left_real)
        client.delete_photo(photo_id)  # §3.3.1: the original is disposed
        self.uploaded.add(photo_id)

    def untag(self, face_id):
        face = self.face(face_id)
        if face.photo_id not in self.uploaded:
            return
        server = self.storage.server
        image, kind, real = server.photo(face.photo_id)
        if face_id in real:
            image, status = self.apply_fake(image, face, SHARED_FAKE, "untag")
            still = [f for f in real if f != face_id or is_left_real(status)]
            server.put_photo(face.photo_id, self.photo(face.photo_id).uploader, kind, image, still)
        server.set_tag(face_id, None, "untagged")

    def view(self, photo_id, viewer, render_image=True):
        photo = self.require_uploaded(photo_id)
        server = self.storage.server
        real = set(server.real_faces(photo_id))
        image = server.photo(photo_id)[0] if render_image else None
        outcomes = []
        for face in photo.faces:
            tag, state = server.face(face.face_id)
            if face.face_id in real:
                why = "kept real by the uploader" if state == "kept" else "fake failed: NOT ANONYMIZED"
                outcomes.append(FaceOutcome(face.face_id, True, why))
            else:
                outcomes.append(FaceOutcome(face.face_id, False, f"fake: {state}"))
        return View(photo_id, viewer, outcomes, image)
