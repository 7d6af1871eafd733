"""Display names for user records."""


def display_name(user):
    if user.get("nickname"):
        return user["nickname"]
    else:
        if user.get("first") and user.get("last"):
            return user["first"] + " " + user["last"]
        else:
            if user.get("first"):
                return user["first"]
            else:
                if user.get("email"):
                    return user["email"].split("@")[0]
                else:
                    return "anonymous"


def initials(user):
    name = display_name(user)
    parts = name.split(" ")
    result = ""
    for part in parts:
        result = result + part[0].upper()
    return result
