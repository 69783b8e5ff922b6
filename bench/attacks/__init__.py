"""The attacks on an anonymization, as privacy researchers now run them: pure numpy on
embeddings and labels, no files, no models (the attack stage, bench/stages/attack.py, reads
the files and calls these).

    split            which photos of each person are the attacker's gallery, which are probes
    pairs            distance matrices and labelled pairs (deepface's distances)
    identification   closed-set gallery identification: rank-k rate and chance level (the
                     naive attacker: anonymized probes vs a real gallery) and the parrot
                     attacker (anonymized probes vs a gallery anonymized the same way)
    linkability      are the fakes of one person linkable across photos (ROC AUC, TAR at FAR)
    distributions    the threshold-free view: Source-vs-Result distances beside the genuine
                     and impostor distributions
    kanonymity       MFMC Supp. D: the mean of k fakes of one face against the source

Sources: the attacker models follow Hanisch, Todt, Patino, Evans, Strufe, "A False Sense of
Privacy: Towards a Reliable Evaluation Methodology for the Anonymization of Biometric Data"
(arXiv:2304.01635), which names the naive attacker (real gallery) and the parrot
attacker (gallery anonymized with the same method), and SEBA (Todt, Hanisch, Strufe, "SEBA:
Strong Evaluation of Biometric Anonymizations", arXiv:2407.06648), the framework that
implements them. Their parrot attacker also retrains the recognizer on anonymized data; ours
does not (no training here): it is the gallery-only variant, a lower bound on theirs.
"""
