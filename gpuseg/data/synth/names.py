"""Invented product names: brands, department words and aisle nouns, combined without repeats.

The vocabulary is the project's own; no real product appears.
"""
from __future__ import annotations

import math

import numpy as np

from .. import taxonomy

_BRANDS = (
    "Brookvale", "Sunmeadow", "Kettleby", "Amberfield", "Northgrove", "Wildmere", "Stonecrest",
    "Fernhollow", "Clearbrook", "Maplewick", "Goldfinch Farm", "Riverbend", "Hearthside",
    "Bluestem", "Oakhaven", "Pinecrest", "Willowmoor", "Copperkettle", "Greenwold",
    "Saltmarsh", "Highmeadow", "Elmstead", "Brightwater", "Thistledown",
)
#: Department -> (descriptors, varieties) of invented product names.
_DEPARTMENT_WORDS = {
    "frozen": ("Classic|Homestyle|Crispy|Family Size|Single Serve|Lightly Breaded|Fire Roasted|"
               "Golden|Hearty|Rustic",
               "Chicken|Four Cheese|Vegetable|Beef|Mushroom|Spinach|Teriyaki|Mango|Vanilla Bean|"
               "Sweet Potato|Cauliflower|Mixed Berry"),
    "other": ("Assorted|Everyday|Seasonal|Gift|Travel|Mini|Deluxe|Classic|Party|Value",
              "Holiday|Garden|Picnic|Festive|Original|Sampler|Variety|Essentials|Starter|Combo|"
              "Weekend|Home"),
    "bakery": ("Artisan|Stone Baked|Soft|Rustic|Golden|Seeded|Sliced|Classic|Hearty|Fresh Baked",
               "Sourdough|Whole Wheat|Multigrain|Rye|Brioche|Cinnamon|Blueberry|Honey Oat|"
               "Pumpernickel|Butter|Ciabatta|Sesame"),
    "produce": ("Fresh|Sweet|Crisp|Vine Ripened|Hand Picked|Baby|Heirloom|Petite|Premium|"
                "Farm Fresh",
                "Red|Golden|Green|Purple|Rainbow|Honey|Seedless|Mini|White|Yellow|Sunrise|Valley"),
    "alcohol": ("Reserve|Small Batch|Estate|Crisp|Bold|Smooth|Barrel Aged|Classic|Vintage|Dry",
                "Amber|Citrus|Hazy|Oak|Berry|Black Cherry|Golden|Hop|Pale|Coastal|Valley|Mountain"),
    "international": ("Authentic|Traditional|Homestyle|Spicy|Mild|Classic|Street Style|"
                      "Fragrant|Bold|Zesty",
                      "Coconut|Chipotle|Sesame|Tamarind|Lime|Garlic|Ginger|Cilantro|Mango|Chili|"
                      "Saffron|Black Bean"),
    "beverages": ("Sparkling|Pure|Cold Brewed|Refreshing|Lightly Sweetened|Unsweetened|Classic|"
                  "Zero Sugar|Bold|Smooth",
                  "Lemon|Lime|Raspberry|Peach|Mango|Ginger|Berry|Vanilla|Hibiscus|Cucumber Mint|"
                  "Grapefruit|Black Cherry"),
    "pets": ("Grain Free|Healthy Weight|Indoor|Senior|Puppy|Kitten|Classic|Premium|Natural|"
             "Gourmet",
             "Chicken|Salmon|Turkey|Beef|Lamb|Ocean Fish|Duck|Liver|Tuna|Sweet Potato|Venison|"
             "Rabbit"),
    "dry goods pasta": ("Classic|Whole Grain|Quick Cook|Traditional|Artisan|Bronze Cut|Hearty|"
                        "Family Size|Instant|Rustic",
                        "Tomato Basil|Garlic|Four Cheese|Marinara|Spinach|Wild Mushroom|Jasmine|"
                        "Basmati|Brown|Roasted Pepper|Pesto|Lemon Herb"),
    "bulk": ("Bulk|Natural|Raw|Unsalted|Dried|Whole|Sun Dried|Premium|Select|Loose",
             "Apricot|Mango|Quinoa|Lentil|Barley|Cranberry|Date|Fig|Chickpea|Millet|Farro|"
             "Pineapple"),
    "personal care": ("Gentle|Sensitive|Daily|Extra Strength|Soothing|Fresh|Hydrating|Clinical|"
                      "Natural|Travel Size",
                      "Lavender|Eucalyptus|Coconut|Aloe|Tea Tree|Unscented|Citrus|Mint|Oatmeal|"
                      "Rose|Charcoal|Shea"),
    "meat seafood": ("Boneless|Thick Cut|Lean|Smoked|Marinated|Free Range|Grass Fed|Wild Caught|"
                     "Seasoned|Hickory",
                     "Applewood|Peppercorn|Lemon Pepper|Herb|Maple|Garlic|Teriyaki|Mesquite|"
                     "Cajun|Italian|Chipotle|Honey"),
    "pantry": ("Classic|Pure|Stone Ground|Extra Virgin|Smoky|Tangy|Sweet|Spicy|Cold Pressed|"
               "Old Fashioned",
               "Garlic|Honey|Chipotle|Balsamic|Dijon|Maple|Sesame|Lemon|Rosemary|Jalapeno|"
               "Smoked Paprika|Vanilla"),
    "breakfast": ("Crunchy|Hearty|Whole Grain|Toasted|Lightly Sweetened|Classic|Protein|"
                  "Honey Roasted|Old Fashioned|Ancient Grain",
                  "Almond|Cinnamon|Blueberry|Maple|Pecan|Chocolate Chip|Coconut|Banana Nut|"
                  "Vanilla|Cranberry|Apple|Peanut Butter"),
    "canned goods": ("Hearty|Classic|Low Sodium|Chunky|Homestyle|Reduced Fat|Fire Roasted|"
                     "Slow Cooked|No Salt Added|Country",
                     "Chicken|Tomato|Black Bean|Lentil|Vegetable|Beef|Sweet Corn|Pinto|"
                     "Minestrone|Peach|Pear|Garden"),
    "dairy eggs": ("Creamy|Fresh|Whole|Reduced Fat|Grass Fed|Pasture Raised|Cultured|Aged|"
                   "Smooth|Rich",
                   "Vanilla|Strawberry|Plain|Honey|Blueberry|Sharp|Mild|Salted|Unsalted|Peach|"
                   "Lemon|Chive"),
    "household": ("Ultra|Heavy Duty|Everyday|Gentle|Fresh|Extra Strength|Compact|Value Pack|Eco|"
                  "Multi Surface",
                  "Lavender|Lemon|Citrus|Unscented|Ocean Breeze|Linen|Mountain Air|Eucalyptus|"
                  "Grapefruit|Mint|Cedar|Spring Rain"),
    "babies": ("Gentle|Sensitive|Stage 1|Stage 2|Stage 3|Toddler|Tear Free|Soft|Hypoallergenic|"
               "Newborn",
               "Apple|Pear|Banana|Sweet Potato|Carrot|Pea|Oatmeal|Mango|Unscented|Chamomile|"
               "Blueberry|Squash"),
    "snacks": ("Crunchy|Kettle Cooked|Lightly Salted|Sea Salt|Baked|Chewy|Crispy|Roasted|Zesty|"
               "Classic",
               "Cheddar|Sour Cream Onion|Barbecue|Honey Mustard|Chocolate|Peanut Butter|Almond|"
               "Cinnamon|Jalapeno|Caramel|Rosemary|Cranberry"),
    "deli": ("Fresh|Homestyle|Oven Roasted|Smoked|Classic|Garden|Mediterranean|Hearty|"
             "Thin Sliced|Chef's",
             "Turkey|Chicken|Roasted Red Pepper|Garlic|Lemon|Pesto|Black Pepper|Honey|Caesar|"
             "Quinoa|Ham|Spinach"),
    "missing": ("Assorted|Mixed|Variety|Specialty|Seasonal|Limited Edition|Sampler|Select|"
                "Classic|Favorite",
                "Original|Mixed Berry|Honey|Sea Salt|Vanilla|Garden|Harvest|Sunrise|Citrus|"
                "Golden|Fiesta|Country"),
}
#: Aisle -> what its products are called (last word(s) of an invented name).
_AISLE_NOUNS = {
    "prepared soups salads": "Soup Cup|Grain Salad|Chopped Salad|Bisque",
    "specialty cheeses": "Cheese Wedge|Brie Round|Goat Cheese Log|Cave Aged Gouda",
    "energy granola bars": "Granola Bars|Energy Bites|Chewy Bars|Nut Bars",
    "instant foods": "Ramen Cup|Mac Cups|Instant Noodle Bowl|Quick Oat Pack",
    "marinades meat preparation": "Marinade|Meat Rub|Brine Mix|Grilling Glaze",
    "other": "Gift Set|Party Pack|Travel Kit|Sampler Box",
    "packaged meat": "Beef Strips|Pork Loin Pack|Meatballs|Ground Beef Pack",
    "bakery desserts": "Layer Cake|Cupcakes|Fruit Tart|Brownie Tray",
    "pasta sauce": "Pasta Sauce|Simmer Sauce|Alfredo Sauce|Vodka Sauce",
    "kitchen supplies": "Sponges|Kitchen Towels|Scrub Brush|Oven Mitt",
    "cold flu allergy": "Cold Relief Caplets|Allergy Tablets|Cough Drops|Sinus Spray",
    "fresh pasta": "Ravioli|Tortellini|Fettuccine Nest|Gnocchi",
    "fresh dips tapenades": "Hummus|Guacamole|Tzatziki|Salsa Fresca",
    "prepared meals": "Meal Kit|Grain Bowl|Entree Tray|Burrito Bowl",
    "tofu meat alternatives": "Tofu Block|Tempeh|Plant Burger|Seitan Strips",
    "packaged seafood": "Salmon Fillets|Shrimp Pack|Cod Portions|Smoked Trout",
    "fresh herbs": "Basil Bunch|Cilantro Bunch|Mint Sprigs|Parsley Bunch",
    "baking ingredients": "Baking Flour|Cane Sugar|Baking Soda|Chocolate Chips",
    "bulk dried fruits vegetables": "Dried Fruit Scoop|Dried Veggie Mix|Fruit Pieces",
    "oils vinegars": "Olive Oil|Wine Vinegar|Avocado Oil|Cooking Spray",
    "oral hygiene": "Toothpaste|Toothbrush|Mouthwash|Dental Floss",
    "packaged cheese": "Shredded Cheese|Cheese Slices|Cheese Sticks|Cheese Block",
    "hair care": "Shampoo|Conditioner|Hair Mask|Styling Gel",
    "popcorn jerky": "Popcorn|Beef Jerky|Turkey Jerky|Kettle Corn",
    "fresh fruits": "Apples|Pears|Grapes|Plums|Mangoes|Nectarines",
    "soap": "Bar Soap|Hand Soap|Foaming Hand Wash|Soap Refill",
    "coffee": "Ground Coffee|Whole Bean Coffee|Coffee Pods|Cold Brew Concentrate",
    "beers coolers": "Lager|India Pale Ale|Hard Seltzer|Wheat Ale",
    "red wines": "Cabernet|Pinot Noir|Merlot|Red Blend",
    "honeys syrups nectars": "Honey Jar|Maple Syrup|Agave Nectar|Pancake Syrup",
    "latino foods": "Salsa Verde|Refried Beans|Taco Shells|Enchilada Sauce",
    "refrigerated": "Iced Coffee|Kombucha|Cold Pressed Juice|Oat Latte",
    "packaged produce": "Salad Kit|Cut Fruit Cup|Veggie Tray|Spiralized Zucchini",
    "kosher foods": "Matzo Crackers|Gefilte Fish|Kosher Pickles|Challah Mix",
    "frozen meat seafood": "Frozen Shrimp|Frozen Fish Fillets|Frozen Chicken Breasts|"
                           "Frozen Burger Patties",
    "poultry counter": "Whole Chicken|Chicken Thighs|Turkey Breast|Chicken Wings",
    "butter": "Butter Sticks|Whipped Butter|Cultured Butter|Ghee",
    "ice cream ice": "Ice Cream Pint|Ice Cream Bars|Gelato|Ice Cubes",
    "frozen meals": "Frozen Entree|Frozen Bowl|Frozen Lasagna|Frozen Pot Pie",
    "seafood counter": "Fresh Salmon|Sea Scallops|Tuna Steak|Halibut Fillet",
    "dog food care": "Dry Dog Food|Dog Treats|Wet Dog Food|Dog Chews",
    "cat food care": "Dry Cat Food|Cat Treats|Wet Cat Food|Cat Litter",
    "frozen vegan vegetarian": "Veggie Burgers|Plant Nuggets|Falafel Bites|Veggie Crumbles",
    "buns rolls": "Dinner Rolls|Hamburger Buns|Hot Dog Buns|Slider Buns",
    "eye ear care": "Eye Drops|Contact Solution|Ear Drops|Eye Wash",
    "candy chocolate": "Chocolate Bar|Gummy Bears|Truffles|Peanut Butter Cups",
    "mint gum": "Chewing Gum|Breath Mints|Gum Pack|Mint Tin",
    "vitamins supplements": "Multivitamin|Vitamin Gummies|Fish Oil Softgels|Probiotic Capsules",
    "breakfast bars pastries": "Toaster Pastries|Breakfast Bars|Soft Baked Bars|Oat Squares",
    "packaged poultry": "Chicken Breast Pack|Ground Turkey|Chicken Tenders|Turkey Meatballs",
    "fruit vegetable snacks": "Fruit Snacks|Apple Chips|Veggie Straws|Fruit Leather",
    "preserved dips spreads": "Bean Dip|Olive Tapenade|Fig Spread|Queso Dip",
    "frozen breakfast": "Frozen Waffles|Breakfast Sandwiches|Frozen Pancakes|Breakfast Burritos",
    "cream": "Heavy Cream|Half and Half|Coffee Creamer|Whipping Cream",
    "paper goods": "Paper Towels|Toilet Paper|Facial Tissues|Paper Napkins",
    "shave needs": "Shave Cream|Razors|Aftershave Balm|Razor Cartridges",
    "diapers wipes": "Diapers|Baby Wipes|Training Pants|Overnight Diapers",
    "granola": "Granola|Granola Clusters|Muesli|Grain Free Granola",
    "frozen breads doughs": "Frozen Pizza Dough|Frozen Garlic Bread|Puff Pastry|Frozen Biscuits",
    "canned meals beans": "Canned Beans|Baked Beans|Canned Chili|Canned Ravioli",
    "trash bags liners": "Trash Bags|Kitchen Bags|Recycling Bags|Compost Bags",
    "cookies cakes": "Cookies|Sandwich Cookies|Snack Cakes|Shortbread",
    "white wines": "Chardonnay|Sauvignon Blanc|Pinot Grigio|Riesling",
    "grains rice dried goods": "Long Grain Rice|Quinoa Pack|Couscous|Dried Lentils",
    "energy sports drinks": "Sports Drink|Energy Drink|Electrolyte Water|Energy Shot",
    "protein meal replacements": "Protein Powder|Protein Shake|Meal Replacement Bars|"
                                 "Protein Bars",
    "asian foods": "Soy Sauce|Rice Noodles|Curry Paste|Stir Fry Sauce",
    "bulk grains rice dried goods": "Bulk Rice|Bulk Oats|Bulk Beans|Bulk Grains",
    "soup broth bouillon": "Bone Broth|Vegetable Stock|Bouillon Cubes|Condensed Soup",
    "digestion": "Antacid Tablets|Fiber Supplement|Digestive Enzymes|Stomach Relief",
    "refrigerated pudding desserts": "Pudding Cups|Gelatin Cups|Rice Pudding|Custard",
    "condiments": "Ketchup|Mustard|Mayonnaise|Hot Sauce",
    "facial care": "Face Wash|Face Moisturizer|Facial Toner|Face Mask",
    "dish detergents": "Dish Soap|Dishwasher Pods|Dishwasher Detergent|Rinse Aid",
    "laundry": "Laundry Detergent|Fabric Softener|Dryer Sheets|Stain Remover",
    "indian foods": "Tikka Masala Sauce|Naan|Basmati Pilaf|Chutney",
    "soft drinks": "Cola|Lemon Lime Soda|Root Beer|Ginger Ale",
    "crackers": "Crackers|Rice Crackers|Water Crackers|Crispbread",
    "frozen pizza": "Frozen Pizza|Flatbread Pizza|Pizza Rolls|Thin Crust Pizza",
    "deodorants": "Deodorant|Antiperspirant|Deodorant Spray|Body Spray",
    "canned jarred vegetables": "Canned Corn|Diced Tomatoes|Green Beans|Jarred Roasted Peppers",
    "baby accessories": "Baby Bottles|Pacifiers|Sippy Cups|Teething Rings",
    "fresh vegetables": "Carrots|Broccoli Crowns|Bell Peppers|Zucchini|Cucumbers|Kale Bunch",
    "milk": "Milk Gallon|Milk Half Gallon|Chocolate Milk|Lactose Free Milk",
    "food storage": "Storage Bags|Plastic Wrap|Aluminum Foil|Food Containers",
    "eggs": "Large Eggs|Brown Eggs|Egg Whites|Jumbo Eggs",
    "more household": "Light Bulbs|Batteries|Matches|Lint Roller",
    "spreads": "Peanut Butter|Almond Butter|Fruit Preserves|Hazelnut Spread",
    "salad dressing toppings": "Salad Dressing|Croutons|Vinaigrette|Salad Toppers",
    "cocoa drink mixes": "Hot Cocoa Mix|Drink Mix|Malted Milk Powder|Chai Mix",
    "soy lactosefree": "Almond Milk|Oat Milk|Soy Milk|Coconut Milk",
    "baby food formula": "Baby Food Pouch|Infant Formula|Baby Cereal|Toddler Puffs",
    "breakfast bakery": "Bagels|Muffins|English Muffins|Croissants",
    "tea": "Tea Bags|Loose Leaf Tea|Herbal Infusion|Iced Tea Bags",
    "canned meat seafood": "Canned Tuna|Canned Salmon|Canned Chicken|Sardines",
    "lunch meat": "Sliced Turkey|Sliced Ham|Salami|Roast Beef Slices",
    "baking supplies decor": "Sprinkles|Cupcake Liners|Food Coloring|Cake Decorating Kit",
    "juice nectars": "Orange Juice|Apple Juice|Juice Boxes|Lemonade",
    "canned fruit applesauce": "Applesauce Cups|Canned Peaches|Fruit Cups|Mandarin Oranges",
    "missing": "Assortment|Variety Box|Multipack|Bundle",
    "air fresheners candles": "Scented Candle|Air Freshener|Reed Diffuser|Room Spray",
    "baby bath body care": "Baby Wash|Baby Lotion|Diaper Cream|Baby Shampoo",
    "ice cream toppings": "Chocolate Syrup|Caramel Sauce|Whipped Topping|Sundae Sprinkles",
    "spices seasonings": "Seasoning Blend|Ground Cinnamon|Sea Salt Grinder|Peppercorns",
    "doughs gelatins bake mixes": "Cake Mix|Brownie Mix|Gelatin Dessert|Pie Crust",
    "hot dogs bacon sausage": "Hot Dogs|Bacon|Breakfast Sausage|Chicken Sausage",
    "chips pretzels": "Potato Chips|Tortilla Chips|Pretzel Twists|Pita Chips",
    "other creams cheeses": "Cream Cheese|Sour Cream|Cottage Cheese|Ricotta",
    "skin care": "Body Lotion|Hand Cream|Sunscreen|Lip Balm",
    "pickled goods olives": "Dill Pickles|Kalamata Olives|Pickled Onions|Capers",
    "plates bowls cups flatware": "Paper Plates|Plastic Cups|Disposable Bowls|Plastic Forks",
    "bread": "Sandwich Bread|Loaf|Sliced Bread|Bread Round",
    "frozen juice": "Frozen Juice Concentrate|Frozen Lemonade|Frozen Limeade",
    "cleaning products": "All Purpose Cleaner|Glass Cleaner|Disinfecting Wipes|Bathroom Cleaner",
    "water seltzer sparkling water": "Sparkling Water|Spring Water|Seltzer|Mineral Water",
    "frozen produce": "Frozen Berries|Frozen Peas|Frozen Broccoli|Frozen Mixed Vegetables",
    "nuts seeds dried fruit": "Roasted Almonds|Cashews|Sunflower Seeds|Dried Cranberries",
    "first aid": "Bandages|Antiseptic Cream|Gauze Pads|First Aid Tape",
    "frozen dessert": "Frozen Pie|Sorbet|Frozen Yogurt Bars|Frozen Cheesecake",
    "yogurt": "Greek Yogurt|Yogurt Cups|Drinkable Yogurt|Skyr",
    "cereal": "Cereal|Corn Flakes|Oat Rings|Bran Flakes",
    "meat counter": "Ribeye Steak|Pork Chops|Ground Chuck|Lamb Chops",
    "packaged vegetables fruits": "Baby Carrots|Spinach Bag|Spring Mix|Berry Clamshell",
    "spirits": "Vodka|Bourbon|Gin|Tequila",
    "trail mix snack mix": "Trail Mix|Snack Mix|Nut Clusters|Party Mix",
    "feminine care": "Tampons|Pads|Panty Liners|Menstrual Cup",
    "body lotions soap": "Body Wash|Shower Gel|Body Butter|Bath Bomb",
    "tortillas flat bread": "Flour Tortillas|Corn Tortillas|Pita Bread|Wraps",
    "frozen appetizers sides": "Frozen Fries|Mozzarella Sticks|Egg Rolls|Onion Rings",
    "hot cereal pancake mixes": "Oatmeal|Pancake Mix|Grits|Waffle Mix",
    "dry pasta": "Spaghetti|Penne|Rotini|Elbow Macaroni",
    "beauty": "Nail Polish|Makeup Remover|Mascara|Cotton Rounds",
    "muscles joints pain relief": "Pain Reliever|Muscle Rub|Joint Supplement|Heat Patches",
    "specialty wines champagnes": "Champagne|Prosecco|Rose|Dessert Wine",
}


def product_names(rng: np.random.Generator, block_size: np.ndarray) -> list[str]:
    """Unique invented names: brand, [Organic], descriptor, variety, aisle noun."""
    names: list[str] = []
    for (aisle_name, department_id), sizes in zip(taxonomy.AISLES, block_size):
        descriptors, varieties = (w.split("|") for w in
                                  _DEPARTMENT_WORDS[taxonomy.DEPARTMENTS[department_id - 1]])
        nouns = _AISLE_NOUNS[aisle_name].split("|")
        shape = (len(_BRANDS), len(descriptors), len(varieties), len(nouns))
        picks = rng.choice(math.prod(shape), size=int(sizes.sum()), replace=False)
        for number, (b, d, v, n) in enumerate(zip(*np.unravel_index(picks, shape))):
            organic = "Organic " if number >= sizes[0] else ""
            names.append(f"{_BRANDS[b]} {organic}{descriptors[d]} {varieties[v]} {nouns[n]}")
    return names
