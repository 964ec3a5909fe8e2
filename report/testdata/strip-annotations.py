import json,sys
def strip(o):
    if isinstance(o, dict):
        out={}
        for k,v in o.items():
            if k in ("description","title","$comment") and isinstance(v,str): continue
            if k in ("examples",) and isinstance(v,list): continue
            if k=="meta:enum" and isinstance(v,dict): continue
            out[k]=strip(v)
        return out
    if isinstance(o, list): return [strip(x) for x in o]
    return o
d=json.load(open(sys.argv[1]))
s=json.dumps(strip(d),separators=(",",":"),sort_keys=False)
open(sys.argv[2],"w").write(s+"\n")
print(sys.argv[2], len(s))
