#!/usr/bin/env python3
# Usage: python3 docs/tools/oneroster-region.py PUPILS SCHOOL_DAYS OUT_DIR  (docs/import-format.md)
"""A synthetic OneRoster 1.1 region: PUPILS pupils in schools of 1,000, homerooms of 25,
1-2 parents each, 10 subject classes per homeroom taught by the school's teachers, a graded
work every second of SCHOOL_DAYS school days per subject class, a mark for every third pupil
of each work (about 1.7 marks per pupil per school day)."""
import csv, os, sys, datetime
if len(sys.argv) != 4:
    sys.exit(__doc__)
pupils, days, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
os.makedirs(out, exist_ok=True)
def snils(n):
    body = f"{n % 1_000_000_000:09d}"
    s = sum(int(c) * (9 - i) for i, c in enumerate(body))
    s = s % 101
    if s == 100: s = 0
    return f"{body[0:3]}-{body[3:6]}-{body[6:9]} {s:02d}"
W = {}
def w(name, header):
    f = open(os.path.join(out, name), "w", newline="")
    c = csv.writer(f); c.writerow(header); W[name] = (f, c); return c
orgs = w("orgs.csv", ["sourcedId","name","type","parentSourcedId"])
ses = w("academicSessions.csv", ["sourcedId","title","type","startDate","endDate","parentSourcedId"])
courses = w("courses.csv", ["sourcedId","title","orgSourcedId"])
classes = w("classes.csv", ["sourcedId","title","grades","courseSourcedId","classCode","classType","schoolSourcedId","termSourcedIds"])
users = w("users.csv", ["sourcedId","orgSourcedIds","role","givenName","familyName","identifier","agentSourcedIds"])
enr = w("enrollments.csv", ["sourcedId","classSourcedId","userSourcedId","role","primary","beginDate"])
items = w("lineItems.csv", ["sourcedId","title","assignDate","classSourcedId"])
res = w("results.csv", ["sourcedId","lineItemSourcedId","studentSourcedId","score"])
orgs.writerow(["rg","Область","state",""]); orgs.writerow(["rg-d","Район","district","rg"])
ses.writerow(["y","2026/2027","schoolYear","2026-09-01","2027-05-31",""])
for i,(a,b) in enumerate([("2026-09-01","2026-10-25"),("2026-11-05","2026-12-28"),("2027-01-09","2027-03-21"),("2027-04-01","2027-05-31")]):
    ses.writerow([f"t{i+1}",f"{i+1} четверть","term",a,b,"y"])
SUBJ = ["Русский язык","Литература","Математика","История","Обществознание","География","Биология","Физика","Химия","Английский язык"]
letters = "АБВГ"
n = 0
school_days = []
d = datetime.date(2026, 9, 1)
while len(school_days) < days:
    if d.weekday() < 5: school_days.append(d)
    d += datetime.timedelta(days=1)
schools = max(1, pupils // 1000)
for s in range(schools):
    sch = f"s{s}"
    orgs.writerow([sch, f"Школа № {s+1}", "school", "rg-d"])
    for k, name in enumerate(SUBJ):
        courses.writerow([f"{sch}-c{k}", name, sch])
    homerooms = 1000 // 25
    teachers = int(homerooms * 1.7)
    for t in range(teachers):
        users.writerow([f"{sch}-t{t}", sch, "teacher", "Учитель", f"Учителев{s}_{t}", "", ""])
    for h in range(homerooms):
        grade = h // 4 + 1
        hr = f"{sch}-h{h}"
        classes.writerow([hr, f"{grade}{letters[h%4]}", f"{grade:02d}", "", f"{grade}{letters[h%4]}", "homeroom", sch, "y"])
        enr.writerow([f"e-{hr}-t", hr, f"{sch}-t{h}", "teacher", "true", ""])
        kids = []
        for i in range(25):
            n += 1
            p = f"p{n}"; kids.append(p)
            users.writerow([p, sch, "student", "Ученик", f"Фамилия{n}", snils(500_000_000 + n), f"g{n}"])
            users.writerow([f"g{n}", sch, "parent", "Родитель", f"Фамилия{n}", "", ""])
            if n % 10 < 7:
                users.writerow([f"g{n}b", sch, "parent", "Родитель2", f"Фамилия{n}", "", p])
            enr.writerow([f"e-{hr}-{p}", hr, p, "student", "false", "2026-09-01"])
        for k in range(len(SUBJ)):
            sc = f"{hr}-c{k}"
            classes.writerow([sc, f"{SUBJ[k]} {grade}{letters[h%4]}", f"{grade:02d}", f"{sch}-c{k}", "S", "scheduled", sch, "y"])
            enr.writerow([f"e-{sc}-t", sc, f"{sch}-t{(h*10+k) % teachers}", "teacher", "true", ""])
            for p in kids:
                enr.writerow([f"e-{sc}-{p}", sc, p, "student", "false", ""])
            for di, day in enumerate(school_days):
                if (di + k) % 2: continue
                it = f"{sc}-i{di}"
                items.writerow([it, "Работа", day.isoformat(), sc])
                for j, p in enumerate(kids):
                    if (j + di + k) % 3 == 0:
                        res.writerow([f"{it}-{p}", it, p, (j + di) % 4 + 2])
for f, _ in W.values(): f.close()
