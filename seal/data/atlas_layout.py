"""The ATLAS top-tagging open-data layout (CERN open data record 15013): its key names and units.

Per jet ``i``: ``fjet_clus_pt/eta/phi/E[i, :]`` (constituents, pT-ordered, zero-padded; pT and
E in MeV), ``fjet_pt/eta/phi/m[i]`` (MeV), ``labels[i]`` (1 = top) and ``weights[i]`` (or
``training_weights`` in the second release), and ``EventInfo_mcEventNumber[i]`` (the second
release's event number: jets of one event share it, and it matches a jet across the nominal and
systematic-variation files). The reader (:mod:`seal.data.jets`) and the writer
(:mod:`seal.generation.atlas`) both take the names from here.
"""

CONSTITUENT_KEYS = ("fjet_clus_pt", "fjet_clus_eta", "fjet_clus_phi", "fjet_clus_E")
JET_KEYS = ("fjet_pt", "fjet_eta", "fjet_phi", "fjet_m")
MEV_KEYS = ("fjet_clus_pt", "fjet_clus_E", "fjet_pt", "fjet_m")
MEV_PER_GEV = 1000.0
EVENT_NUMBER = "EventInfo_mcEventNumber"
# (n, k) generator weights of each jet's event: the baseline first, then its variations (their
# names in metadata/mc_weight_names)
EVENT_WEIGHTS = "EventInfo_mcEventWeights"
