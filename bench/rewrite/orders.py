"""Order totals for the checkout page."""


def order_total(order):
    t = 0
    for i in range(len(order["items"])):
        it = order["items"][i]
        t = t + it["price"] * it["quantity"]
    if order["coupon"] != None:
        if order["coupon"]["kind"] == "percent":
            t = t - t * order["coupon"]["value"] / 100
        else:
            if order["coupon"]["kind"] == "fixed":
                t = t - order["coupon"]["value"]
    if t < 0:
        t = 0
    return round(t, 2)


def order_weight(order):
    w = 0
    for i in range(len(order["items"])):
        it = order["items"][i]
        w = w + it["weight"] * it["quantity"]
    return w
