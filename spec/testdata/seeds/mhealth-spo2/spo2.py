print("spo2")
